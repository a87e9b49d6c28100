//! The directory of several nodes on one PostgreSQL database (tables of migration
//! `0002_directory.sql`): views published by each tenant's owner and mirrored by the
//! others, `NOTIFY specs` and a periodic refresh for routes, commands through
//! `tenant_commands` + `NOTIFY commands`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::actors::status::TenantView;
use crate::locks::lock;
use crate::store::InboxSignal;

use super::{
    Command, CommandFailure, CommandOutcome, FailureKind, Host, MIRROR_EVERY, PUBLISH_EVERY,
    Publications, REFRESH_EVERY, decode_outcome, encode_outcome,
};

/// The SQL of migration `0002_directory.sql` (the directory's tables and triggers), to
/// be listed as version 2 in the store's migrations where the branches meet; tests on
/// a database migrated to 0001 apply it themselves until then.
pub const MIGRATION_0002_SQL: &str =
    include_str!("../../store/backend/postgres/migrations/0002_directory.sql");

/// Channel of the spec trigger (payload: the tenant id).
pub const SPECS_CHANNEL: &str = "specs";
/// Channel of the command trigger (payload: the tenant id).
pub const COMMANDS_CHANNEL: &str = "commands";

/// Views re-read on every mirror pass besides the new ones: a row committed a little
/// after a later-stamped one is still seen.
const MIRROR_OVERLAP_SECS: f64 = 5.0;
/// Finished commands are kept this long (for an operator's look), then deleted.
const KEEP_DONE: &str = "1 hour";
/// A command no node claimed in this time is closed as unanswered.
const UNCLAIMED_EXPIRY: &str = "10 minutes";

/// A query failed.
#[derive(Debug, thiserror::Error)]
#[error("cluster directory: {0}")]
pub struct DirectoryError(#[from] sqlx::Error);

/// One node's directory on the shared database.
pub struct PgDirectory {
    pool: PgPool,
    node_id: String,
    /// Tenants this node holds the lease of (from `leases`, refreshed, and told by the
    /// lease manager through [`Self::set_owned`]).
    owned: Mutex<HashSet<String>>,
    /// Tenants whose view this node published last (no other node has published one
    /// since): still this node's while their actor is down (failed, stopped,
    /// restarting), so their view stays current and their commands find this node.
    published_here: Mutex<HashSet<String>>,
    /// One lock per tenant with commands running here: its commands run one at a
    /// time, in order.
    executing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl PgDirectory {
    /// The directory of node `node_id` on `pool`'s database (migration
    /// `0002_directory.sql` applied).
    pub fn new(pool: PgPool, node_id: impl Into<String>) -> Self {
        Self {
            pool,
            node_id: node_id.into(),
            owned: Mutex::default(),
            published_here: Mutex::default(),
            executing: Mutex::default(),
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Records whether this node holds the lease of tenant `id` (called by the lease
    /// manager on acquire and loss; also read from `leases` on every refresh).
    pub fn set_owned(&self, id: &str, owned: bool) {
        let mut set = lock(&self.owned);
        if !owned {
            lock(&self.published_here).remove(id);
        }
        if owned {
            set.insert(id.to_string());
        } else {
            set.remove(id);
        }
    }

    /// Whether this node runs tenant `id`: it holds its lease, its actor runs here, or
    /// it ran here and no other node has published its view since.
    pub fn owns(&self, host: &dyn Host, id: &str) -> bool {
        lock(&self.owned).contains(id)
            || host.running(id)
            || lock(&self.published_here).contains(id)
    }

    /// Stores `views` as this node's publication.
    pub async fn publish(&self, views: &[TenantView]) -> Result<(), DirectoryError> {
        if views.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = views.iter().map(|view| view.id.clone()).collect();
        let documents: Vec<String> = views
            .iter()
            .map(|view| serde_json::to_string(view).expect("views serialise to JSON"))
            .collect();
        sqlx::query(
            "INSERT INTO tenant_views (tenant, view, owner, updated_at)
             SELECT tenant, view::jsonb, $3, now() FROM unnest($1::text[], $2::text[]) AS v(tenant, view)
             ON CONFLICT (tenant) DO UPDATE
                SET view = EXCLUDED.view, owner = EXCLUDED.owner, updated_at = EXCLUDED.updated_at",
        )
        .bind(&ids)
        .bind(&documents)
        .bind(&self.node_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The published view of tenant `id` and the node that published it.
    pub async fn published(
        &self,
        id: &str,
    ) -> Result<Option<(TenantView, Option<String>)>, DirectoryError> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT view::text, owner FROM tenant_views WHERE tenant = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|(view, owner)| Some((parse_view(id, &view)?, owner))))
    }

    /// Views published at or after `since` (seconds since the epoch, database time),
    /// with the newest stamp among them.
    async fn published_since(
        &self,
        since: Option<f64>,
    ) -> Result<(Vec<(TenantView, Option<String>)>, Option<f64>), DirectoryError> {
        let rows: Vec<(String, String, Option<String>, f64)> = sqlx::query_as(
            "SELECT tenant, view::text, owner, extract(epoch FROM updated_at)::float8
             FROM tenant_views WHERE $1::float8 IS NULL OR updated_at >= to_timestamp($1::float8)",
        )
        .bind(since.map(|since| since - MIRROR_OVERLAP_SECS))
        .fetch_all(&self.pool)
        .await?;
        let newest = rows.iter().map(|row| row.3).fold(since, |newest, stamp| {
            Some(newest.map_or(stamp, |newest: f64| newest.max(stamp)))
        });
        let views = rows
            .into_iter()
            .filter_map(|(id, view, owner, _)| Some((parse_view(&id, &view)?, owner)))
            .collect();
        Ok((views, newest))
    }

    /// The node that last published tenant `id`'s view (for messages naming it).
    pub async fn owner_of(&self, id: &str) -> Option<String> {
        sqlx::query_scalar::<_, Option<String>>("SELECT owner FROM tenant_views WHERE tenant = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten()
            .flatten()
    }

    /// Posts `command` for tenant `id` and waits at most `deadline` for its owner's
    /// result. Unanswered: a 503-kind failure naming the node (if one is known); a
    /// command no node claimed by then is closed so it never runs late.
    pub async fn command(&self, id: &str, command: &Command, deadline: Duration) -> CommandOutcome {
        match self.command_inner(id, command, deadline).await {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::warn!(tenant_id = %id, error = %error, "cluster command failed");
                Err(CommandFailure::new(
                    FailureKind::Unavailable,
                    format!("the command for tenant `{id}` could not reach its node: {error}"),
                ))
            }
        }
    }

    async fn command_inner(
        &self,
        id: &str,
        command: &Command,
        deadline: Duration,
    ) -> Result<CommandOutcome, DirectoryError> {
        let document = serde_json::to_string(command).expect("commands serialise to JSON");
        let command_id: i64 = sqlx::query_scalar(
            "INSERT INTO tenant_commands (tenant, command) VALUES ($1, $2::jsonb) RETURNING id",
        )
        .bind(id)
        .bind(&document)
        .fetch_one(&self.pool)
        .await?;
        let give_up = tokio::time::Instant::now() + deadline;
        let mut pause = Duration::from_millis(10);
        loop {
            let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT result::text, claimed_by FROM tenant_commands WHERE id = $1 AND done_at IS NOT NULL",
            )
            .bind(command_id)
            .fetch_optional(&self.pool)
            .await?;
            if let Some((result, _)) = row {
                let value = result
                    .and_then(|text| serde_json::from_str(&text).ok())
                    .unwrap_or(serde_json::Value::Null);
                return Ok(decode_outcome(value));
            }
            if tokio::time::Instant::now() >= give_up {
                break;
            }
            tokio::time::sleep(pause.min(give_up - tokio::time::Instant::now())).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
        let unanswered = encode_outcome(&Err(CommandFailure::new(
            FailureKind::Unavailable,
            "unanswered",
        )))
        .to_string();
        let closed = sqlx::query(
            "UPDATE tenant_commands SET done_at = now(), result = $2::jsonb
             WHERE id = $1 AND claimed_by IS NULL AND done_at IS NULL",
        )
        .bind(command_id)
        .bind(&unanswered)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let claimed_by: Option<String> =
            sqlx::query_scalar("SELECT claimed_by FROM tenant_commands WHERE id = $1")
                .bind(command_id)
                .fetch_optional(&self.pool)
                .await?
                .flatten();
        let message = match (closed, claimed_by) {
            (0, Some(node)) => format!(
                "node `{node}`, which runs tenant `{id}`, did not answer in time (it may still finish)"
            ),
            _ => match self.owner_of(id).await {
                Some(node) => format!(
                    "no node took the command for tenant `{id}` in time (last run by node `{node}`); nothing was done, retry"
                ),
                None => format!(
                    "no node runs tenant `{id}` right now; nothing was done, retry once it runs"
                ),
            },
        };
        Ok(Err(CommandFailure::new(FailureKind::Unavailable, message)))
    }

    /// Claims the open commands of the tenants this node owns (all of them, or only
    /// `tenant`'s) and runs them, in order per tenant, each tenant on its own task.
    pub async fn claim(self: &Arc<Self>, host: &Arc<dyn Host>, tenant: Option<&str>) {
        let owned: Vec<String> = match tenant {
            Some(id) if self.owns(host.as_ref(), id) => vec![id.to_string()],
            Some(_) => return,
            None => {
                let mut owned: Vec<String> = lock(&self.owned).iter().cloned().collect();
                owned.extend(lock(&self.published_here).iter().cloned());
                owned.extend(
                    host.views()
                        .views()
                        .into_iter()
                        .map(|view| view.id)
                        .filter(|id| host.running(id)),
                );
                owned
            }
        };
        if owned.is_empty() {
            return;
        }
        let claimed: Vec<(i64, String, String)> = match sqlx::query_as(
            "UPDATE tenant_commands SET claimed_by = $1, claimed_at = now()
             WHERE id IN (SELECT id FROM tenant_commands
                          WHERE tenant = ANY($2) AND claimed_by IS NULL AND done_at IS NULL
                          ORDER BY id FOR UPDATE SKIP LOCKED)
             RETURNING id, tenant, command::text",
        )
        .bind(&self.node_id)
        .bind(&owned)
        .fetch_all(&self.pool)
        .await
        {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(error = %error, "cluster commands not claimed");
                return;
            }
        };
        let mut by_tenant: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
        for (id, tenant, command) in claimed {
            by_tenant.entry(tenant).or_default().push((id, command));
        }
        for (tenant, mut commands) in by_tenant {
            commands.sort_by_key(|(id, _)| *id);
            let directory = self.clone();
            let host = host.clone();
            let turn = lock(&self.executing)
                .entry(tenant.clone())
                .or_default()
                .clone();
            tokio::spawn(async move {
                let _turn = turn.lock().await;
                for (command_id, document) in commands {
                    let outcome = match serde_json::from_str::<Command>(&document) {
                        Ok(command) => {
                            tracing::info!(tenant_id = %tenant, command_id, "running a command from another node");
                            host.execute(tenant.clone(), command).await
                        }
                        Err(error) => Err(CommandFailure::new(
                            FailureKind::Unavailable,
                            format!(
                                "node `{}` cannot read this command: {error}",
                                directory.node_id
                            ),
                        )),
                    };
                    directory.finish(command_id, &outcome).await;
                }
            });
        }
    }

    /// Records the outcome of command `command_id`.
    async fn finish(&self, command_id: i64, outcome: &CommandOutcome) {
        let result = sqlx::query(
            "UPDATE tenant_commands SET done_at = now(), result = $2::jsonb WHERE id = $1",
        )
        .bind(command_id)
        .bind(encode_outcome(outcome).to_string())
        .execute(&self.pool)
        .await;
        if let Err(error) = result {
            tracing::warn!(command_id, error = %error, "command result not recorded");
        }
    }

    /// A delivery for tenant `id` was stored (by any node): wakes its actor if it runs
    /// here. Called for each inbox notification.
    pub fn inbox_notified(&self, host: &dyn Host, id: &str) {
        if host.running(id) {
            host.wake(id);
        }
    }

    /// Starts the directory's tasks for `host`: the listener (`specs`, `commands`), the
    /// publisher, the mirror, the periodic refresh and, given the store's inbox
    /// notifications, the wakes. They end when the returned handles are aborted.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        host: Arc<dyn Host>,
        inbox: Option<UnboundedReceiver<InboxSignal>>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = vec![
            tokio::spawn(self.clone().listen(host.clone())),
            tokio::spawn(self.clone().publish_loop(host.clone())),
            tokio::spawn(self.clone().mirror_loop(host.clone())),
        ];
        if let Some(inbox) = inbox {
            tasks.push(tokio::spawn(self.clone().wake_loop(host.clone(), inbox)));
        }
        tasks.push(tokio::spawn(self.clone().refresh_loop(host)));
        tasks
    }

    /// Wakes the tenants run here for each inbox notification; every one of them when
    /// the store (re)starts listening (notifications may have been missed meanwhile).
    async fn wake_loop(
        self: Arc<Self>,
        host: Arc<dyn Host>,
        mut inbox: UnboundedReceiver<InboxSignal>,
    ) {
        while let Some(signal) = inbox.recv().await {
            match signal {
                InboxSignal::Tenant(id) => self.inbox_notified(host.as_ref(), &id),
                InboxSignal::Listening => {
                    for view in host.views().views() {
                        self.inbox_notified(host.as_ref(), &view.id);
                    }
                }
            }
        }
    }

    /// The pool (tests).
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn listen(self: Arc<Self>, host: Arc<dyn Host>) {
        loop {
            let mut listener = match PgListener::connect_with(&self.pool).await {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(error = %error, "cluster directory cannot listen; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(error) = listener.listen_all([SPECS_CHANNEL, COMMANDS_CHANNEL]).await {
                tracing::warn!(error = %error, "cluster directory cannot listen; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            // Whatever was notified while not listening.
            host.refresh_specs().await;
            self.claim(&host, None).await;
            // Until the connection drops (`Ok(None)` or an error): then listen again and
            // catch up.
            while let Ok(Some(notification)) = listener.try_recv().await {
                let tenant = notification.payload().to_string();
                match notification.channel() {
                    SPECS_CHANNEL => host.spec_changed(tenant).await,
                    COMMANDS_CHANNEL => self.claim(&host, Some(&tenant)).await,
                    _ => {}
                }
            }
        }
    }

    async fn publish_loop(self: Arc<Self>, host: Arc<dyn Host>) {
        let mut publications = Publications::default();
        let mut tick = tokio::time::interval(PUBLISH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let owned: Vec<TenantView> = host
                .views()
                .views()
                .into_iter()
                .filter(|view| self.owns(host.as_ref(), &view.id))
                .collect();
            publications.retain(|id| owned.iter().any(|view| view.id == id));
            let now = tokio::time::Instant::now();
            let due = publications.due(&owned, now);
            match self.publish(&due).await {
                Ok(()) => {
                    publications.published(&due, now);
                    lock(&self.published_here).extend(due.iter().map(|view| view.id.clone()));
                }
                Err(error) => tracing::warn!(error = %error, "tenant views not published"),
            }
        }
    }

    async fn mirror_loop(self: Arc<Self>, host: Arc<dyn Host>) {
        let mut since = None;
        let mut tick = tokio::time::interval(MIRROR_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.published_since(since).await {
                Ok((views, newest)) => {
                    since = newest;
                    for (view, owner) in views {
                        if owner.as_deref() == Some(self.node_id.as_str()) {
                            continue;
                        }
                        // Another node published after this one: the tenant is its now.
                        lock(&self.published_here).remove(&view.id);
                        if self.owns(host.as_ref(), &view.id)
                            || host
                                .views()
                                .view(&view.id)
                                .is_none_or(|known| known == view)
                        {
                            continue;
                        }
                        tracing::debug!(tenant_id = %view.id, owner = ?owner, "mirrored view");
                        host.views().insert_mirrored(view);
                    }
                }
                Err(error) => tracing::warn!(error = %error, "tenant views not mirrored"),
            }
        }
    }

    async fn refresh_loop(self: Arc<Self>, host: Arc<dyn Host>) {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            self.refresh_leases().await;
            host.refresh_specs().await;
            self.claim(&host, None).await;
            self.tidy().await;
        }
    }

    /// Re-reads the tenants this node holds a live lease of (a database without the
    /// `leases` table keeps what [`Self::set_owned`] said).
    async fn refresh_leases(&self) {
        let leased: Result<Vec<String>, _> =
            sqlx::query_scalar("SELECT tenant FROM leases WHERE owner = $1 AND expires_at > now()")
                .bind(&self.node_id)
                .fetch_all(&self.pool)
                .await;
        if let Ok(leased) = leased {
            *lock(&self.owned) = leased.into_iter().collect();
        }
    }

    /// Deletes old finished commands, closes commands nobody claimed, and drops views
    /// of tenants whose spec is gone (a publication that raced a delete).
    async fn tidy(&self) {
        let statements = [
            format!(
                "DELETE FROM tenant_commands WHERE done_at < now() - interval '{KEEP_DONE}'"
            ),
            format!(
                "UPDATE tenant_commands SET done_at = now(), result = '{}'::jsonb
                 WHERE done_at IS NULL AND claimed_by IS NULL AND created_at < now() - interval '{UNCLAIMED_EXPIRY}'",
                encode_outcome(&Err(CommandFailure::new(FailureKind::Unavailable, "unanswered")))
            ),
            "DELETE FROM tenant_views v WHERE NOT EXISTS (
                SELECT 1 FROM meta m WHERE m.key = '\\x74656e616e7400'::bytea || convert_to(v.tenant, 'UTF8'))"
                .to_string(),
        ];
        for statement in statements {
            if let Err(error) = sqlx::query(&statement).execute(&self.pool).await {
                tracing::debug!(error = %error, "cluster directory tidy-up skipped");
            }
        }
    }
}

/// A published view, or `None` (logged) when this version cannot read it.
fn parse_view(id: &str, document: &str) -> Option<TenantView> {
    match serde_json::from_str(document) {
        Ok(view) => Some(view),
        Err(error) => {
            tracing::warn!(tenant_id = %id, error = %error, "published tenant view unreadable");
            None
        }
    }
}

#[cfg(test)]
mod tests;
