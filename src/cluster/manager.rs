//! The lease manager: one task per node that keeps this node's leases and runs exactly
//! the tenants it holds.
//!
//! Every `renew` interval it heartbeats its `nodes` row and renews all its leases in one
//! statement; a lease reported lost stops that tenant at once and clears its fence. Then
//! it plans ([`super::share`]): it takes free or expired leases up to its fair share (fence
//! set, `reconcile_due` marked when taken over from an expired lease, tenant started), or
//! gives up the excess a batch per round (tenant stopped, flushed, lease released).
//!
//! A local safety deadline backs the database: a lease counts as lost here once
//! `renew start + lease - margin` passes without a successful renew, so a process that
//! was paused (or cut off from the database) stops acting on a lease the database may
//! already have given away, before it would learn so from a renew. The database's fence
//! stays the authority; this only keeps the node from trying.
//!
//! What the manager does to tenants goes through [`TenantHost`] (the supervisor and the
//! store), so it is tested with a fake host.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};

use super::Fence;
use super::lease::{LeaseError, LeaseTable};
use super::share::{self, Sizes, View};

/// Tenants flushed at once at shutdown.
const SHUTDOWN_FLUSHES: usize = 16;

/// Leases taken per acquire statement (and started before the time budget is checked).
const ACQUIRE_CHUNK: usize = 100;

/// Runs one lease statement, given at most `limit`: a database that hangs must not
/// keep the manager from its local deadlines.
async fn bounded<T>(
    limit: Duration,
    statement: impl Future<Output = Result<T, LeaseError>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, statement).await {
        Ok(result) => result.map_err(|error| error.to_string()),
        Err(_) => Err(format!(
            "the database did not answer within {} ms",
            limit.as_millis()
        )),
    }
}

/// What the manager does to the tenants of this node: starting and stopping their
/// actors (the supervisor) and their storage (fence, flush, marks).
pub trait TenantHost: Send + Sync + 'static {
    /// Every tenant of the cluster, by id (the shared registry, not only this node's).
    fn tenants(&self) -> impl Future<Output = Result<Vec<String>, String>> + Send;
    /// Starts `tenant`'s actor here (its lease and fence are already this node's).
    fn start(&self, tenant: &str) -> impl Future<Output = Result<(), String>> + Send;
    /// Stops `tenant`'s actor here at once (nothing more of it runs when this returns).
    fn stop(&self, tenant: &str) -> impl Future<Output = ()> + Send;
    /// Makes every write of `tenant` durable (before its lease is released).
    fn flush(&self, tenant: &str) -> impl Future<Output = Result<(), String>> + Send;
    /// Sets or clears the lease `tenant`'s commits are fenced by; without one the
    /// tenant is read-only here.
    fn set_fence(&self, tenant: &str, fence: Option<Fence>);
    /// Marks `tenant` for one full reconciliation when it next starts (its previous
    /// owner let the lease expire and may have lost unflushed writes); durable on return.
    fn mark_reconcile_due(&self, tenant: &str) -> impl Future<Output = Result<(), String>> + Send;
}

/// How a manager runs (from `[cluster]`; durations, so tests can go below a second).
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// This node's id (`leases.owner`, `nodes.node_id`).
    pub node_id: String,
    /// Where other nodes reach this one (`nodes.address`).
    pub address: String,
    /// How long a lease lasts past each renew (`cluster.lease_seconds`).
    pub lease: Duration,
    /// How often leases are renewed and the share re-planned (`cluster.renew_seconds`).
    pub renew: Duration,
    /// Leases beyond `ceil(T/N)` this node may hold (`cluster.share_slack`).
    pub slack: usize,
    /// How long before the database's expiry a lease not renewed counts as lost here.
    pub margin: Duration,
}

impl ManagerConfig {
    /// The config of `[cluster]` for a node reachable at `address` (its public URL).
    pub fn from_section(section: &crate::config::ClusterSection, address: String) -> Self {
        Self::new(
            section.node_id(),
            address,
            Duration::from_secs(section.lease_seconds),
            Duration::from_secs(section.renew_seconds),
            usize::try_from(section.share_slack).unwrap_or(usize::MAX),
        )
    }

    /// The config of `[cluster]`: the margin is a fifth of the lease.
    pub fn new(
        node_id: String,
        address: String,
        lease: Duration,
        renew: Duration,
        slack: usize,
    ) -> Self {
        Self {
            node_id,
            address,
            lease,
            renew,
            slack,
            margin: lease / 5,
        }
    }
}

/// A lease this node holds.
#[derive(Debug, Clone, Copy)]
struct Held {
    epoch: i64,
    /// The local safety deadline: past it, without a renew, the lease counts as lost.
    valid_until: Instant,
}

/// Requests to the manager task.
enum Command {
    /// Sent by [`ManagerHandle::shutdown`]: stop every tenant, flush, release every
    /// lease, deregister, then end. The task's end is the reply.
    Shutdown,
    /// Sent by fault drills and tests ([`ManagerHandle::stall`]): the manager does
    /// nothing for this long, as a paused process would. No reply.
    Stall(Duration),
}

/// The running manager.
pub struct ManagerHandle {
    commands: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
    leases: Arc<Mutex<BTreeMap<String, i64>>>,
}

impl ManagerHandle {
    /// The leases this node holds (tenant -> epoch), as of the manager's last step.
    pub fn leases(&self) -> BTreeMap<String, i64> {
        self.leases.lock().expect("lease list lock").clone()
    }

    /// Ends the manager cleanly (the SIGTERM path): tenants stopped and flushed, leases
    /// released (free at once for the other nodes), node deregistered. Returns when done.
    pub async fn shutdown(self) {
        let _ = self.commands.send(Command::Shutdown);
        let _ = self.task.await;
    }

    /// [`Self::shutdown`], given at most `within` (SIGTERM must end the process in
    /// time); past it the manager is stopped where it is and whatever it did not
    /// release expires. Whether it finished.
    pub async fn shutdown_within(mut self, within: Duration) -> bool {
        let _ = self.commands.send(Command::Shutdown);
        match tokio::time::timeout(within, &mut self.task).await {
            Ok(_) => true,
            Err(_) => {
                self.task.abort();
                warn!("lease manager shutdown cut off; unreleased leases expire");
                false
            }
        }
    }

    /// Ends the manager as a crash would: nothing released, the leases expire.
    pub fn kill(self) {
        self.task.abort();
    }

    /// Makes the manager do nothing for `duration`, as a paused process would (a fault
    /// drill).
    pub fn stall(&self, duration: Duration) {
        let _ = self.commands.send(Command::Stall(duration));
    }
}

/// The lease manager of one node.
pub struct LeaseManager<H: TenantHost> {
    table: LeaseTable,
    host: Arc<H>,
    config: ManagerConfig,
    held: BTreeMap<String, Held>,
    /// Tenants known to have a lease row.
    ensured: HashSet<String>,
    published: Arc<Mutex<BTreeMap<String, i64>>>,
}

impl<H: TenantHost> LeaseManager<H> {
    /// Registers this node and starts the manager task; `wake` makes it plan at once
    /// (a tenant was created). Fails only if the node cannot register (the database is
    /// unreachable).
    pub async fn spawn(
        table: LeaseTable,
        host: Arc<H>,
        config: ManagerConfig,
        wake: Arc<tokio::sync::Notify>,
    ) -> Result<ManagerHandle, LeaseError> {
        table.register(&config.address).await?;
        let published = Arc::new(Mutex::new(BTreeMap::new()));
        let manager = Self {
            table,
            host,
            config,
            held: BTreeMap::new(),
            ensured: HashSet::new(),
            published: published.clone(),
        };
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(manager.run(receiver, wake));
        Ok(ManagerHandle {
            commands,
            task,
            leases: published,
        })
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        wake: Arc<tokio::sync::Notify>,
    ) {
        let mut next_round = Instant::now();
        loop {
            self.expire_locally().await;
            if Instant::now() >= next_round {
                let started = Instant::now();
                if let Err(error) = self.round(started).await {
                    warn!(node_id = %self.config.node_id, error = %error, "lease round failed");
                }
                next_round = started + self.config.renew;
            }
            self.publish();
            let deadline = self.held.values().map(|held| held.valid_until).min();
            let wake_at = deadline.map_or(next_round, |deadline| deadline.min(next_round));
            tokio::select! {
                _ = tokio::time::sleep_until(wake_at) => {}
                _ = wake.notified() => next_round = Instant::now(),
                command = commands.recv() => match command {
                    Some(Command::Stall(duration)) => {
                        warn!(node_id = %self.config.node_id, ?duration, "lease manager stalled by a fault drill");
                        tokio::time::sleep(duration).await;
                    }
                    Some(Command::Shutdown) | None => {
                        self.shutdown().await;
                        self.publish();
                        return;
                    }
                },
            }
        }
    }

    /// Shares the held leases with the handle.
    fn publish(&self) {
        let leases = self
            .held
            .iter()
            .map(|(tenant, held)| (tenant.clone(), held.epoch))
            .collect();
        *self.published.lock().expect("lease list lock") = leases;
    }

    /// Drops every lease whose local deadline has passed.
    async fn expire_locally(&mut self) {
        let now = Instant::now();
        let late: Vec<String> = self
            .held
            .iter()
            .filter(|(_, held)| held.valid_until <= now)
            .map(|(tenant, _)| tenant.clone())
            .collect();
        for tenant in late {
            self.lose(&tenant, "not renewed before its local deadline")
                .await;
        }
    }

    /// A lease this node no longer holds: the tenant stops here at once and becomes
    /// read-only here.
    async fn lose(&mut self, tenant: &str, why: &str) {
        if let Some(held) = self.held.remove(tenant) {
            warn!(node_id = %self.config.node_id, tenant_id = %tenant, epoch = held.epoch, reason = why, "lease lost; tenant stopped here");
            self.host.stop(tenant).await;
            self.host.set_fence(tenant, None);
        }
    }

    /// Gives a lease up without releasing it: the tenant stops here and the lease is no
    /// longer renewed, so it expires and its next owner reconciles the tenant.
    async fn abandon(&mut self, tenant: &str, why: &str) {
        if self.held.remove(tenant).is_some() {
            warn!(node_id = %self.config.node_id, tenant_id = %tenant, reason = why, "lease left to expire");
            self.host.stop(tenant).await;
            self.host.set_fence(tenant, None);
        }
    }

    fn deadline_from(&self, sent: Instant) -> Instant {
        sent + self.config.lease.saturating_sub(self.config.margin)
    }

    /// One round: heartbeat, renew, plan, release or acquire.
    async fn round(&mut self, started: Instant) -> Result<(), String> {
        let draining = bounded(
            self.config.renew,
            self.table.heartbeat(&self.config.address),
        )
        .await?;
        let held: Vec<(String, i64)> = self
            .held
            .iter()
            .map(|(tenant, held)| (tenant.clone(), held.epoch))
            .collect();
        let sent = Instant::now();
        let renewed = bounded(self.config.renew, self.table.renew(&held)).await?;
        let valid_until = self.deadline_from(sent);
        for tenant in &renewed.renewed {
            if let Some(held) = self.held.get_mut(tenant) {
                held.valid_until = valid_until;
            }
        }
        for tenant in &renewed.lost {
            self.lose(tenant, "taken over or expired").await;
        }

        let tenants = self.host.tenants().await?;
        let known: HashSet<&String> = tenants.iter().collect();
        let unseen: Vec<String> = tenants
            .iter()
            .filter(|tenant| !self.ensured.contains(*tenant))
            .cloned()
            .collect();
        bounded(self.config.renew, self.table.ensure(&unseen)).await?;
        self.ensured.extend(unseen);
        // A tenant deleted from the registry: stop it and let its lease go.
        let gone: Vec<(String, i64)> = self
            .held
            .iter()
            .filter(|(tenant, _)| !known.contains(tenant))
            .map(|(tenant, held)| (tenant.clone(), held.epoch))
            .collect();
        for (tenant, _) in &gone {
            self.host.stop(tenant).await;
            self.host.set_fence(tenant, None);
            self.held.remove(tenant);
        }
        bounded(self.config.renew, self.table.release(&gone)).await?;

        let candidates = bounded(self.config.renew, self.table.candidates()).await?;
        let (mut free, mut expired) = (Vec::new(), Vec::new());
        for candidate in candidates {
            if known.contains(&candidate.tenant) && !self.held.contains_key(&candidate.tenant) {
                if candidate.expired {
                    expired.push(candidate.tenant);
                } else {
                    free.push(candidate.tenant);
                }
            }
        }
        let live_nodes = bounded(self.config.renew, self.table.live_nodes()).await?;
        let held: Vec<String> = self.held.keys().cloned().collect();
        let sizes = Sizes {
            tenants: tenants.len(),
            live_nodes,
            slack: self.config.slack,
        };
        let plan = share::plan(
            View {
                held: &held,
                free: &free,
                expired: &expired,
                draining,
            },
            sizes,
        );
        for tenant in &plan.release {
            self.release(tenant).await?;
        }
        if !plan.acquire.is_empty() {
            self.acquire(&plan.acquire, started + self.config.renew)
                .await?;
        }
        Ok(())
    }

    /// Gives one lease up cleanly: stop, flush, release. A failed flush leaves the lease
    /// to expire instead (the next owner then reconciles what may be lost).
    async fn release(&mut self, tenant: &str) -> Result<(), String> {
        let Some(held) = self.held.get(tenant).copied() else {
            return Ok(());
        };
        self.host.stop(tenant).await;
        if let Err(error) = self.host.flush(tenant).await {
            self.abandon(tenant, &format!("flush before release failed: {error}"))
                .await;
            return Ok(());
        }
        self.held.remove(tenant);
        self.host.set_fence(tenant, None);
        // Should this fail, the lease expires instead (its taker reconciles needlessly).
        bounded(
            self.config.renew,
            self.table.release(&[(tenant.to_string(), held.epoch)]),
        )
        .await?;
        info!(node_id = %self.config.node_id, tenant_id = %tenant, epoch = held.epoch, "lease released");
        Ok(())
    }

    /// Takes the leases of `tenants` that are still free or expired and starts those
    /// tenants, a chunk at a time until `budget` passes (the rest wait for the next
    /// round, so renewing never waits behind many starts).
    async fn acquire(&mut self, tenants: &[String], budget: Instant) -> Result<(), String> {
        for chunk in tenants.chunks(ACQUIRE_CHUNK) {
            if Instant::now() >= budget {
                break;
            }
            let sent = Instant::now();
            let acquired = bounded(self.config.renew, self.table.acquire(chunk)).await?;
            let valid_until = self.deadline_from(sent);
            for lease in acquired {
                let tenant = lease.tenant.clone();
                self.held.insert(
                    tenant.clone(),
                    Held {
                        epoch: lease.epoch,
                        valid_until,
                    },
                );
                self.host.set_fence(
                    &tenant,
                    Some(Fence {
                        owner: self.config.node_id.clone(),
                        epoch: lease.epoch,
                    }),
                );
                if lease.from_expired
                    && let Err(error) = self.host.mark_reconcile_due(&tenant).await
                {
                    // Left to expire again, so the next owner reconciles it.
                    self.abandon(
                        &tenant,
                        &format!("could not mark the reconciliation: {error}"),
                    )
                    .await;
                    continue;
                }
                if let Err(error) = self.host.start(&tenant).await {
                    self.abandon(&tenant, &format!("could not start: {error}"))
                        .await;
                    continue;
                }
                info!(node_id = %self.config.node_id, tenant_id = %tenant, epoch = lease.epoch, from_expired = lease.from_expired, "lease acquired; tenant started");
            }
        }
        Ok(())
    }

    /// The clean end: draining (other nodes stop counting this one), every tenant
    /// stopped, flushed and its lease released, the node deregistered. A tenant whose
    /// flush fails keeps its lease until it expires (its next owner reconciles).
    async fn shutdown(&mut self) {
        let node_id = self.config.node_id.clone();
        if let Err(error) = self.table.set_draining(&node_id, true).await {
            warn!(node_id = %node_id, error = %error, "could not mark the node draining");
        }
        let held: Vec<(String, Held)> = std::mem::take(&mut self.held).into_iter().collect();
        for (tenant, _) in &held {
            self.host.stop(tenant).await;
        }
        let owned: Vec<(String, i64)> = held
            .iter()
            .map(|(tenant, lease)| (tenant.clone(), lease.epoch))
            .collect();
        let host = self.host.clone();
        let flushed: Vec<(String, i64, Result<(), String>)> = futures::stream::iter(owned)
            .map(move |(tenant, epoch)| {
                let host = host.clone();
                async move {
                    let outcome = host.flush(&tenant).await;
                    (tenant, epoch, outcome)
                }
            })
            .buffer_unordered(SHUTDOWN_FLUSHES)
            .collect()
            .await;
        let mut release = Vec::new();
        for (tenant, epoch, outcome) in flushed {
            match outcome {
                Ok(()) => release.push((tenant.clone(), epoch)),
                Err(error) => {
                    warn!(node_id = %node_id, tenant_id = %tenant, error = %error, "flush failed at shutdown; lease left to expire")
                }
            }
            self.host.set_fence(&tenant, None);
        }
        match self.table.release(&release).await {
            Ok(released) => {
                info!(node_id = %node_id, released = released.len(), "leases released at shutdown")
            }
            Err(error) => {
                warn!(node_id = %node_id, error = %error, "leases not released at shutdown; they expire")
            }
        }
        if let Err(error) = self.table.deregister().await {
            warn!(node_id = %node_id, error = %error, "node not deregistered");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use sqlx::{PgPool, Row};

    use super::*;
    use crate::cluster::testdb;

    /// What a fake host saw, in order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Event {
        Start(String),
        Stop(String),
        Flush(String),
        Fence(String, Option<i64>),
        Reconcile(String),
    }

    #[derive(Default)]
    struct HostState {
        running: BTreeSet<String>,
        fences: BTreeMap<String, i64>,
        reconcile_due: BTreeSet<String>,
        events: Vec<Event>,
        fail_flush: BTreeSet<String>,
        /// Broken rules (a start without this node's fence, a flush without a fence).
        violations: Vec<String>,
    }

    /// A node's supervisor and store, as far as the manager sees them.
    struct FakeHost {
        node: String,
        registry: Arc<Mutex<Vec<String>>>,
        state: Mutex<HostState>,
    }

    impl FakeHost {
        fn new(node: &str, registry: &Arc<Mutex<Vec<String>>>) -> Arc<Self> {
            Arc::new(Self {
                node: node.into(),
                registry: registry.clone(),
                state: Mutex::default(),
            })
        }

        fn with<T>(&self, f: impl FnOnce(&mut HostState) -> T) -> T {
            f(&mut self.state.lock().unwrap())
        }

        fn running(&self) -> BTreeSet<String> {
            self.with(|state| state.running.clone())
        }
    }

    impl TenantHost for FakeHost {
        async fn tenants(&self) -> Result<Vec<String>, String> {
            Ok(self.registry.lock().unwrap().clone())
        }

        async fn start(&self, tenant: &str) -> Result<(), String> {
            self.with(|state| {
                if !state.fences.contains_key(tenant) {
                    state
                        .violations
                        .push(format!("{tenant} started without a fence"));
                }
                state.running.insert(tenant.into());
                state.events.push(Event::Start(tenant.into()));
            });
            Ok(())
        }

        async fn stop(&self, tenant: &str) {
            self.with(|state| {
                state.running.remove(tenant);
                state.events.push(Event::Stop(tenant.into()));
            });
        }

        async fn flush(&self, tenant: &str) -> Result<(), String> {
            self.with(|state| {
                if !state.fences.contains_key(tenant) {
                    state
                        .violations
                        .push(format!("{tenant} flushed without a fence"));
                }
                state.events.push(Event::Flush(tenant.into()));
                if state.fail_flush.contains(tenant) {
                    Err("disk on fire".to_string())
                } else {
                    Ok(())
                }
            })
        }

        fn set_fence(&self, tenant: &str, fence: Option<Fence>) {
            self.with(|state| {
                if let Some(fence) = &fence {
                    assert_eq!(fence.owner, self.node);
                }
                let epoch = fence.map(|fence| fence.epoch);
                match epoch {
                    Some(epoch) => state.fences.insert(tenant.into(), epoch),
                    None => state.fences.remove(tenant),
                };
                state.events.push(Event::Fence(tenant.into(), epoch));
            });
        }

        async fn mark_reconcile_due(&self, tenant: &str) -> Result<(), String> {
            self.with(|state| {
                state.reconcile_due.insert(tenant.into());
                state.events.push(Event::Reconcile(tenant.into()));
            });
            Ok(())
        }
    }

    fn registry(count: usize) -> Arc<Mutex<Vec<String>>> {
        Arc::new(Mutex::new((0..count).map(|i| format!("t{i:02}")).collect()))
    }

    fn config(node: &str, lease: Duration, renew: Duration, slack: usize) -> ManagerConfig {
        ManagerConfig::new(node.into(), format!("http://{node}"), lease, renew, slack)
    }

    async fn spawn(pool: &PgPool, host: &Arc<FakeHost>, config: ManagerConfig) -> ManagerHandle {
        let table = LeaseTable::new(pool.clone(), config.node_id.clone(), config.lease);
        LeaseManager::spawn(table, host.clone(), config, Arc::default())
            .await
            .unwrap()
    }

    /// Polls `done` until it holds, failing with `what` after 20 s.
    async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The lease table: tenant -> (owner, epoch).
    async fn rows(pool: &PgPool) -> BTreeMap<String, (Option<String>, i64)> {
        let rows = sqlx::query("SELECT tenant, owner, epoch FROM leases")
            .fetch_all(pool)
            .await
            .unwrap();
        rows.iter()
            .map(|row| {
                (
                    row.get("tenant"),
                    (row.get("owner"), row.get::<i64, _>("epoch")),
                )
            })
            .collect()
    }

    /// The hosts run exactly the tenants their managers hold, fenced by the database's
    /// epochs, and no tenant on two nodes.
    async fn assert_consistent(pool: &PgPool, nodes: &[(&str, &ManagerHandle, &Arc<FakeHost>)]) {
        let table = rows(pool).await;
        let mut everywhere = BTreeSet::new();
        for (node, handle, host) in nodes {
            let leases = handle.leases();
            let running = host.running();
            assert_eq!(
                running,
                leases.keys().cloned().collect::<BTreeSet<_>>(),
                "{node}"
            );
            assert_eq!(host.with(|state| state.fences.clone()), leases, "{node}");
            for (tenant, epoch) in &leases {
                assert_eq!(table[tenant], (Some(node.to_string()), *epoch), "{tenant}");
                assert!(everywhere.insert(tenant.clone()), "{tenant} on two nodes");
            }
            assert!(host.with(|state| state.violations.is_empty()), "{node}");
        }
    }

    const RENEW: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn two_managers_split_ten_tenants_fairly_and_release_everything_at_shutdown() {
        let Some(db) = testdb::fresh(
            "two_managers_split_ten_tenants_fairly_and_release_everything_at_shutdown",
        )
        .await
        else {
            return;
        };
        let lease = Duration::from_secs(5);
        let tenants = registry(10);
        let (host_a, host_b) = (FakeHost::new("a", &tenants), FakeHost::new("b", &tenants));
        let a = spawn(&db.pool, &host_a, config("a", lease, RENEW, 0)).await;
        wait_until("a, alone, runs all ten", || host_a.running().len() == 10).await;
        let b = spawn(&db.pool, &host_b, config("b", lease, RENEW, 0)).await;
        // a gives up its excess a batch at a time, b takes it: never one tenant on both.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (ran_a, ran_b) = (host_a.running(), host_b.running());
            assert!(ran_a.is_disjoint(&ran_b), "{ran_a:?} and {ran_b:?}");
            if a.leases().len() == 5 && b.leases().len() == 5 && ran_b.len() == 5 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no 5/5 split: {ran_a:?} {ran_b:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_consistent(&db.pool, &[("a", &a, &host_a), ("b", &b, &host_b)]).await;
        // a's released tenants were stopped and flushed before b took them, with a new
        // epoch and no reconciliation.
        assert!(host_b.with(|state| state.reconcile_due.is_empty()));
        let events = host_a.with(|state| state.events.clone());
        for tenant in b.leases().keys() {
            let stop = events
                .iter()
                .position(|e| *e == Event::Stop(tenant.clone()));
            let flush = events
                .iter()
                .position(|e| *e == Event::Flush(tenant.clone()));
            assert!(stop.is_some() && stop < flush, "{tenant}: {events:?}");
            assert_eq!(b.leases()[tenant], 2, "{tenant}");
        }

        assert!(a.shutdown_within(Duration::from_secs(5)).await);
        b.shutdown().await;
        assert!(host_a.running().is_empty() && host_b.running().is_empty());
        assert!(host_a.with(|state| state.fences.is_empty()));
        let table = rows(&db.pool).await;
        assert_eq!(table.len(), 10);
        assert!(
            table.values().all(|(owner, _)| owner.is_none()),
            "{table:?}"
        );
        let nodes = sqlx::query("SELECT count(*) AS n FROM nodes")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(nodes.get::<i64, _>("n"), 0, "both nodes deregistered");
        db.drop().await;
    }

    #[tokio::test]
    async fn a_paused_manager_loses_its_tenants_to_the_other_with_a_higher_epoch() {
        let Some(db) =
            testdb::fresh("a_paused_manager_loses_its_tenants_to_the_other_with_a_higher_epoch")
                .await
        else {
            return;
        };
        let lease = Duration::from_millis(1500);
        let tenants = registry(10);
        let (host_a, host_b) = (FakeHost::new("a", &tenants), FakeHost::new("b", &tenants));
        let a = spawn(&db.pool, &host_a, config("a", lease, RENEW, 0)).await;
        wait_until("a runs all ten", || host_a.running().len() == 10).await;
        let b = spawn(&db.pool, &host_b, config("b", lease, RENEW, 0)).await;
        wait_until("a 5/5 split", || {
            a.leases().len() == 5 && b.leases().len() == 5 && host_b.running().len() == 5
        })
        .await;
        let before_a = a.leases();
        let before_b = b.leases();
        assert!(host_b.with(|state| state.reconcile_due.is_empty()));

        // a stops renewing (its process pauses) past the expiry of its leases.
        let paused_at = host_a.with(|state| state.events.len());
        a.stall(lease * 3);
        wait_until("b runs all ten", || b.leases().len() == 10).await;
        let after = b.leases();
        for (tenant, epoch) in &before_a {
            assert!(
                after[tenant] > *epoch,
                "{tenant}: {} <= {epoch}",
                after[tenant]
            );
        }
        // Taken over from expired leases: exactly those reconcile.
        let reconcile = host_b.with(|state| state.reconcile_due.clone());
        assert_eq!(reconcile, before_a.keys().cloned().collect::<BTreeSet<_>>());
        for (tenant, epoch) in &before_b {
            assert_eq!(after[tenant], *epoch, "b's own leases kept their epoch");
        }

        // a wakes up: it stops every tenant it had, then the two split again.
        wait_until("a stopped what it lost", || {
            host_a.with(|state| {
                let since = &state.events[paused_at..];
                before_a.keys().all(|tenant| {
                    since.contains(&Event::Stop(tenant.clone()))
                        && since.contains(&Event::Fence(tenant.clone(), None))
                })
            })
        })
        .await;
        wait_until("a 5/5 split again", || {
            a.leases().len() == 5 && b.leases().len() == 5 && host_a.running().len() == 5
        })
        .await;
        assert_consistent(&db.pool, &[("a", &a, &host_a), ("b", &b, &host_b)]).await;
        a.shutdown().await;
        b.shutdown().await;
        db.drop().await;
    }

    #[tokio::test]
    async fn a_lease_past_its_local_deadline_stops_its_tenant_before_the_database_expires_it() {
        let Some(db) = testdb::fresh(
            "a_lease_past_its_local_deadline_stops_its_tenant_before_the_database_expires_it",
        )
        .await
        else {
            return;
        };
        let tenants = registry(3);
        let host = FakeHost::new("a", &tenants);
        // Leases of 20 s in the database, trusted locally for 1 s past each renew.
        let mut config = config("a", Duration::from_secs(20), RENEW, 0);
        config.margin = Duration::from_secs(19);
        let a = spawn(&db.pool, &host, config).await;
        wait_until("a runs all three", || host.running().len() == 3).await;
        let held = a.leases();
        a.stall(Duration::from_millis(1500));
        wait_until("a stopped its tenants", || {
            host.running().is_empty() && a.leases().is_empty()
        })
        .await;
        assert!(host.with(|state| state.fences.is_empty()));
        // The database still gives them to a: only the local deadline stopped them.
        let valid = sqlx::query(
            "SELECT count(*) AS n FROM leases WHERE owner = 'a' AND expires_at > now()",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(valid.get::<i64, _>("n"), 3);
        let table = rows(&db.pool).await;
        for (tenant, epoch) in held {
            assert_eq!(table[&tenant], (Some("a".into()), epoch));
        }
        a.kill();
        db.drop().await;
    }

    /// A TCP proxy to the test database that can be frozen: while frozen, nothing
    /// passes either way and nothing is refused (a network partition, not an outage).
    async fn freezable_proxy(
        pool: &PgPool,
    ) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicBool>) {
        use std::sync::atomic::{AtomicBool, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let options = pool.connect_options();
        let upstream = format!("{}:{}", options.get_host(), options.get_port());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let frozen = Arc::new(AtomicBool::new(false));
        let flag = frozen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                for (mut from, mut to) in [(client_read, server_write), (server_read, client_write)]
                {
                    let frozen = flag.clone();
                    tokio::spawn(async move {
                        let mut buffer = vec![0u8; 16 * 1024];
                        loop {
                            let read = match from.read(&mut buffer).await {
                                Ok(0) | Err(_) => return,
                                Ok(read) => read,
                            };
                            while frozen.load(Ordering::SeqCst) {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            if to.write_all(&buffer[..read]).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        });
        (address, frozen)
    }

    #[tokio::test]
    async fn a_node_cut_off_from_the_database_stops_its_tenants_by_its_local_deadline() {
        let Some(db) = testdb::fresh(
            "a_node_cut_off_from_the_database_stops_its_tenants_by_its_local_deadline",
        )
        .await
        else {
            return;
        };
        let (address, frozen) = freezable_proxy(&db.pool).await;
        let options = (*db.pool.connect_options())
            .clone()
            .host("127.0.0.1")
            .port(address.port());
        let through_proxy = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .unwrap();
        let tenants = registry(3);
        let host = FakeHost::new("a", &tenants);
        let mut config = config("a", Duration::from_secs(30), Duration::from_millis(300), 0);
        config.margin = Duration::from_millis(28_500);
        let table = LeaseTable::new(through_proxy, "a", config.lease);
        let a = LeaseManager::spawn(table, host.clone(), config, Arc::default())
            .await
            .unwrap();
        wait_until("a runs all three", || host.running().len() == 3).await;
        // The database stops answering (no error, no refusal): a's statements hang.
        frozen.store(true, std::sync::atomic::Ordering::SeqCst);
        wait_until("a stopped its tenants", || {
            host.running().is_empty() && a.leases().is_empty()
        })
        .await;
        assert!(host.with(|state| state.fences.is_empty()));
        let valid = sqlx::query(
            "SELECT count(*) AS n FROM leases WHERE owner = 'a' AND expires_at > now()",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(
            valid.get::<i64, _>("n"),
            3,
            "the database still gives them to a"
        );
        a.kill();
        frozen.store(false, std::sync::atomic::Ordering::SeqCst);
        db.drop().await;
    }

    #[tokio::test]
    async fn a_tenant_whose_flush_fails_at_shutdown_is_left_to_expire_and_reconciled_by_its_taker()
    {
        let Some(db) = testdb::fresh(
            "a_tenant_whose_flush_fails_at_shutdown_is_left_to_expire_and_reconciled_by_its_taker",
        )
        .await
        else {
            return;
        };
        let lease = Duration::from_secs(4);
        let tenants = registry(4);
        let (host_a, host_b) = (FakeHost::new("a", &tenants), FakeHost::new("b", &tenants));
        let a = spawn(&db.pool, &host_a, config("a", lease, RENEW, 0)).await;
        wait_until("a runs all four", || host_a.running().len() == 4).await;
        // b may take nothing while a holds its share (4 + slack 4).
        let b = spawn(&db.pool, &host_b, config("b", lease, RENEW, 4)).await;
        host_a.with(|state| state.fail_flush.insert("t03".into()));
        a.shutdown().await;
        assert!(host_a.running().is_empty());
        // The released three are free at once: b takes them well before any expiry,
        // without reconciling; t03 still names a.
        wait_until("b runs the three released", || host_b.running().len() >= 3).await;
        let table = rows(&db.pool).await;
        if host_b.running().len() == 3 {
            assert_eq!(table["t03"].0.as_deref(), Some("a"));
        }
        assert!(!host_b.with(|state| state.reconcile_due.contains("t00")));
        wait_until("b runs t03 too", || host_b.running().contains("t03")).await;
        assert_eq!(
            host_b.with(|state| state.reconcile_due.clone()),
            BTreeSet::from(["t03".to_string()])
        );
        assert_consistent(&db.pool, &[("b", &b, &host_b)]).await;
        b.shutdown().await;
        db.drop().await;
    }

    #[tokio::test]
    async fn a_draining_node_hands_its_tenants_over_and_a_deleted_tenant_is_let_go() {
        let Some(db) =
            testdb::fresh("a_draining_node_hands_its_tenants_over_and_a_deleted_tenant_is_let_go")
                .await
        else {
            return;
        };
        let lease = Duration::from_secs(30);
        let tenants = registry(6);
        let (host_a, host_b) = (FakeHost::new("a", &tenants), FakeHost::new("b", &tenants));
        let a = spawn(&db.pool, &host_a, config("a", lease, RENEW, 2)).await;
        let b = spawn(&db.pool, &host_b, config("b", lease, RENEW, 2)).await;
        wait_until("all six run", || {
            host_a.running().len() + host_b.running().len() == 6
        })
        .await;
        let table = LeaseTable::new(db.pool.clone(), "operator", lease);
        assert!(table.set_draining("a", true).await.unwrap());
        wait_until("b runs all six", || host_b.running().len() == 6).await;
        assert!(a.leases().is_empty() && host_a.running().is_empty());
        assert!(host_b.with(|state| state.reconcile_due.is_empty()));
        // A tenant leaves the registry: its owner stops it and frees its lease.
        tenants.lock().unwrap().retain(|tenant| tenant != "t05");
        wait_until("b let t05 go", || !host_b.running().contains("t05")).await;
        wait_until("t05 is free", || !b.leases().contains_key("t05")).await;
        assert_eq!(rows(&db.pool).await["t05"].0, None);
        assert_consistent(&db.pool, &[("a", &a, &host_a), ("b", &b, &host_b)]).await;
        a.shutdown().await;
        b.shutdown().await;
        db.drop().await;
    }
}
