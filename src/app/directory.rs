//! The cluster directory: how a node serves tenants another node runs.
//!
//! - [`Directory::Local`] (sled, one process): every tenant runs here; views, routes and
//!   commands stay in this process exactly as without a directory.
//! - [`Directory::Postgres`] (several nodes on one database, [`postgres::PgDirectory`]):
//!   the owner of a tenant publishes its view into `tenant_views` and every node mirrors
//!   the views of tenants it does not run into its own [`TenantViews`] (so the admin API
//!   and the pages read them as they read a local one); every node learns about created,
//!   changed and deleted tenants from `NOTIFY specs` (a trigger on the spec rows) plus a
//!   periodic refresh; commands (sync, dry run, settings preview, restart, stop,
//!   invitation) for a tenant run here go through `tenant_commands` + `NOTIFY commands`
//!   to its owner, which executes them and records the result the caller waits for.
//!
//! The directory reaches the rest of the process only through [`Host`], so its
//! PostgreSQL half is tested with two directories on one database and no service.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::actors::status::{TenantView, TenantViews};
use crate::domain::tenant::Settings;

pub mod host;
pub mod postgres;

/// Least time between two publications of one tenant's view (a change within it is
/// published when it ends, never dropped).
pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// How often a node re-reads the views other nodes published.
pub const MIRROR_EVERY: Duration = Duration::from_millis(250);

/// How often a node re-reads every stored spec, views and pending commands (the safety
/// net under `NOTIFY`, which a dropped connection loses).
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);

/// Where the views, routes and commands of the tenants live.
#[derive(Clone, Default)]
pub enum Directory {
    /// One process: every tenant runs here.
    #[default]
    Local,
    /// Several nodes on one PostgreSQL database.
    Postgres(Arc<postgres::PgDirectory>),
}

impl Directory {
    /// The directory a process on `store` needs: local on sled; on PostgreSQL the
    /// shared tables, as node `node_id` (see [`node_id`]).
    pub fn of_store(store: &crate::store::Store, node_id: String) -> Self {
        match store.postgres_pool() {
            Some(pool) => Self::Postgres(Arc::new(postgres::PgDirectory::new(pool, node_id))),
            None => Self::Local,
        }
    }

    /// This node's id in a cluster (`None` in one process).
    pub fn node_id(&self) -> Option<&str> {
        match self {
            Self::Local => None,
            Self::Postgres(directory) => Some(directory.node_id()),
        }
    }

    /// Whether tenant `id` must be served by this process: always in one process; in a
    /// cluster when this node owns it (see [`postgres::PgDirectory::owns`]).
    pub fn runs_here(&self, host: &dyn Host, id: &str) -> bool {
        match self {
            Self::Local => true,
            Self::Postgres(directory) => directory.owns(host, id),
        }
    }

    /// Runs `command` for tenant `id` where the tenant runs: here through `host`, or on
    /// its owner through the database, waiting at most `deadline` for the answer.
    pub async fn run(
        &self,
        host: &dyn Host,
        id: &str,
        command: Command,
        deadline: Duration,
    ) -> CommandOutcome {
        match self {
            Self::Postgres(directory) if !directory.owns(host, id) => {
                directory.command(id, &command, deadline).await
            }
            _ => host.execute(id.to_string(), command).await,
        }
    }
}

/// This node's id: `cluster.node_id` when set (`configured`), else `<hostname>-<pid>`,
/// and `-<n>` for the n-th (n >= 2) service built in one process (tests run several
/// nodes in one). The lease manager and the directory use the same id.
pub fn node_id(configured: &str) -> String {
    static BUILT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if !configured.is_empty() {
        return configured.to_string();
    }
    let base = crate::config::host_and_pid();
    match BUILT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) {
        0 => base,
        n => format!("{base}-{}", n + 1),
    }
}

/// What the directory needs from the process it serves (the application implements it
/// over its state in [`host`]; tests implement it with a fake).
pub trait Host: Send + Sync + 'static {
    /// This process's views: the owner's are published, the others are mirrored in.
    fn views(&self) -> &TenantViews;
    /// Whether this process runs tenant `id` now (its actor is up).
    fn running(&self, id: &str) -> bool;
    /// A tenant's spec was created, changed or deleted (by any node): announce it or
    /// forget it here.
    fn spec_changed(&self, id: String) -> BoxFuture<'_, ()>;
    /// Re-reads every stored spec: announces the new, forgets the removed.
    fn refresh_specs(&self) -> BoxFuture<'_, ()>;
    /// Executes a command for a tenant run here.
    fn execute(&self, id: String, command: Command) -> BoxFuture<'_, CommandOutcome>;
    /// Wakes the actor of tenant `id` run here: a delivery was stored (by any node).
    fn wake(&self, id: &str);
}

/// A command for the node that runs a tenant, as stored in `tenant_commands.command`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Start a full reconciliation (`confirm` lifts the mass-deactivation guard once).
    Sync {
        /// Lift the guard.
        #[serde(default)]
        confirm: bool,
    },
    /// Plan a full sync and answer the plan (a `PlanView`).
    DryRun,
    /// Plan a full sync with other settings and answer what the settings page shows of
    /// the plan (a [`crate::web::settings::Preview`]).
    Preview {
        /// The settings to plan with.
        settings: Box<Settings>,
    },
    /// Restart the tenant with its stored spec.
    Restart,
    /// Restart after Personio was connected again (on another node): a tenant that
    /// synced before is first marked for one full reconciliation, by its owner (the
    /// only node whose writes for it count).
    Reconnected,
    /// Stop the tenant (a delete follows on the caller's node).
    Stop,
    /// Invite one person now.
    InviteNow {
        /// The Personio id.
        personio_id: String,
    },
}

/// Why a command failed, as the caller maps it onto the contract's status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The tenant does not exist (404).
    NotFound,
    /// The tenant is not in a state to do it (409).
    WrongState,
    /// An upstream API failed (502).
    Upstream,
    /// No answer in time, or storage failed (503).
    Unavailable,
}

/// A failed command: what kind, and a sentence for the operator (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandFailure {
    /// The kind.
    pub kind: FailureKind,
    /// The sentence.
    pub message: String,
}

impl CommandFailure {
    /// A failure of `kind` saying `message`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// What a command answered: a JSON value (a plan, an invitation outcome, `null`), or
/// why it failed.
pub type CommandOutcome = Result<serde_json::Value, CommandFailure>;

/// The stored form of an outcome (`tenant_commands.result`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredOutcome {
    Ok(serde_json::Value),
    Failed(CommandFailure),
}

/// `outcome` as stored in `tenant_commands.result`.
pub fn encode_outcome(outcome: &CommandOutcome) -> serde_json::Value {
    let stored = match outcome {
        Ok(value) => StoredOutcome::Ok(value.clone()),
        Err(failure) => StoredOutcome::Failed(failure.clone()),
    };
    serde_json::to_value(stored).expect("outcomes serialise to JSON")
}

/// An outcome read back from `tenant_commands.result`; a result this version cannot
/// read is a failure naming it.
pub fn decode_outcome(value: serde_json::Value) -> CommandOutcome {
    match serde_json::from_value(value) {
        Ok(StoredOutcome::Ok(value)) => Ok(value),
        Ok(StoredOutcome::Failed(failure)) => Err(failure),
        Err(error) => Err(CommandFailure::new(
            FailureKind::Unavailable,
            format!("the owner's answer could not be read: {error}"),
        )),
    }
}

/// Which of the owned views to publish now: those changed since their last
/// publication, each at most once per [`PUBLISH_EVERY`] (a change inside that window
/// waits for its end, and is then published with whatever came after it).
#[derive(Default)]
pub struct Publications {
    /// Tenant → the view last published and when.
    last: HashMap<String, (TenantView, tokio::time::Instant)>,
}

impl Publications {
    /// The views of `current` due for publication at `now`. Call [`Self::published`]
    /// once they are stored.
    pub fn due(&self, current: &[TenantView], now: tokio::time::Instant) -> Vec<TenantView> {
        current
            .iter()
            .filter(|view| match self.last.get(&view.id) {
                None => true,
                Some((last, at)) => last != *view && now.duration_since(*at) >= PUBLISH_EVERY,
            })
            .cloned()
            .collect()
    }

    /// Records `views` as published at `now`.
    pub fn published(&mut self, views: &[TenantView], now: tokio::time::Instant) {
        for view in views {
            self.last.insert(view.id.clone(), (view.clone(), now));
        }
    }

    /// Forgets tenants not in `owned` (no longer run here: published again from
    /// scratch if they come back).
    pub fn retain(&mut self, owned: impl Fn(&str) -> bool) {
        self.last.retain(|id, _| owned(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::status::TenantState;

    #[test]
    fn commands_keep_their_stored_form() {
        let sync = Command::Sync { confirm: true };
        let json = serde_json::to_value(&sync).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"command": "sync", "confirm": true})
        );
        assert_eq!(serde_json::from_value::<Command>(json).unwrap(), sync);
        let invite = Command::InviteNow {
            personio_id: "7".into(),
        };
        let json = serde_json::to_value(&invite).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"command": "invite_now", "personio_id": "7"})
        );
        assert_eq!(
            serde_json::from_value::<Command>(serde_json::json!({"command": "sync"})).unwrap(),
            Command::Sync { confirm: false }
        );
        assert!(
            serde_json::from_value::<Command>(serde_json::json!({"command": "reboot"})).is_err()
        );
    }

    #[test]
    fn outcomes_round_trip_and_unreadable_ones_fail_clearly() {
        let ok: CommandOutcome = Ok(serde_json::json!({"steps": []}));
        assert_eq!(decode_outcome(encode_outcome(&ok)), ok);
        let failed: CommandOutcome = Err(CommandFailure::new(FailureKind::WrongState, "stopped"));
        assert_eq!(decode_outcome(encode_outcome(&failed)), failed);
        let unreadable = decode_outcome(serde_json::json!({"maybe": 1})).unwrap_err();
        assert_eq!(unreadable.kind, FailureKind::Unavailable);
        assert!(
            unreadable.message.contains("could not be read"),
            "{unreadable:?}"
        );
    }

    #[test]
    fn a_view_is_published_at_once_then_at_most_every_quarter_second() {
        let start = tokio::time::Instant::now();
        let mut publications = Publications::default();
        let mut view = TenantView::starting("acme", String::new());
        // New: at once.
        assert_eq!(
            publications.due(std::slice::from_ref(&view), start).len(),
            1
        );
        publications.published(std::slice::from_ref(&view), start);
        // Unchanged: never.
        let later = start + Duration::from_secs(5);
        assert!(
            publications
                .due(std::slice::from_ref(&view), later)
                .is_empty()
        );
        // Changed inside the window: waits for its end, then goes out.
        view.state = TenantState::Live;
        assert!(
            publications
                .due(
                    std::slice::from_ref(&view),
                    start + Duration::from_millis(100)
                )
                .is_empty()
        );
        let due = publications.due(std::slice::from_ref(&view), start + PUBLISH_EVERY);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].state, TenantState::Live);
        publications.published(&due, start + PUBLISH_EVERY);
        // A tenant no longer run here is forgotten, and published afresh on return.
        publications.retain(|_| false);
        assert_eq!(
            publications
                .due(std::slice::from_ref(&view), start + PUBLISH_EVERY)
                .len(),
            1
        );
    }
}
