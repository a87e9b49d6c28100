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

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};

use super::Fence;
use super::lease::{LeaseError, LeaseTable};
use super::share::{self, Sizes, View};

/// Leases taken per acquire statement (and started before the time budget is checked).
const ACQUIRE_CHUNK: usize = 100;

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
    /// Registers this node and starts the manager task. Fails only if the node cannot
    /// register (the database is unreachable).
    pub async fn spawn(
        table: LeaseTable,
        host: Arc<H>,
        config: ManagerConfig,
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
        let task = tokio::spawn(manager.run(receiver));
        Ok(ManagerHandle {
            commands,
            task,
            leases: published,
        })
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
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
            let wake = deadline.map_or(next_round, |deadline| deadline.min(next_round));
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
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
        let draining = self
            .table
            .heartbeat(&self.config.address)
            .await
            .map_err(|error| error.to_string())?;
        let held: Vec<(String, i64)> = self
            .held
            .iter()
            .map(|(tenant, held)| (tenant.clone(), held.epoch))
            .collect();
        let sent = Instant::now();
        let renewed = self
            .table
            .renew(&held)
            .await
            .map_err(|error| error.to_string())?;
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
        self.table
            .ensure(&unseen)
            .await
            .map_err(|error| error.to_string())?;
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
        self.table
            .release(&gone)
            .await
            .map_err(|error| error.to_string())?;

        let candidates = self
            .table
            .candidates()
            .await
            .map_err(|error| error.to_string())?;
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
        let live_nodes = self
            .table
            .live_nodes()
            .await
            .map_err(|error| error.to_string())?;
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
        self.table
            .release(&[(tenant.to_string(), held.epoch)])
            .await
            .map_err(|error| error.to_string())?;
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
            let acquired = self
                .table
                .acquire(chunk)
                .await
                .map_err(|error| error.to_string())?;
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
        let mut release = Vec::new();
        for (tenant, lease) in &held {
            match self.host.flush(tenant).await {
                Ok(()) => release.push((tenant.clone(), lease.epoch)),
                Err(error) => {
                    warn!(node_id = %node_id, tenant_id = %tenant, error = %error, "flush failed at shutdown; lease left to expire")
                }
            }
            self.host.set_fence(tenant, None);
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
