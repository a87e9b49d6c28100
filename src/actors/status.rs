//! The tenant views: every tenant's state, errors and counts as the admin API shows
//! them. Tenants write their own view; the admin API and the webhook front door read
//! them without ever waiting on a tenant or the supervisor.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::domain::report::SyncReport;
use crate::domain::tenant::ConnectionInfo;
use crate::locks::lock;
use crate::sync::progress::{Progress, SyncProgress};

/// A tenant's lifecycle state, as the contract names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantState {
    /// Created without a Personio connection: runs nothing until the customer's
    /// administrator connects Personio through an invitation.
    AwaitingConnection,
    /// Authenticating and checking attributes.
    Starting,
    /// Running a full sync.
    Syncing,
    /// Up to date, applying webhooks.
    Live,
    /// Running, but calls fail and are retried (or a guard waits for confirmation).
    Degraded,
    /// Stopped until an operator acts.
    Failed,
    /// Stopped on purpose.
    Stopped,
}

/// Webhook work counters (never overwrite `last_sync`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LiveStats {
    /// Events applied since the tenant was created.
    pub events_applied: u64,
    /// RFC 3339 time of the last applied event.
    pub last_event_at: Option<String>,
}

/// The tenant view of the admin API. Holds no secret but the webhook URL's key, which
/// the contract shows to operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantView {
    /// Tenant id.
    pub id: String,
    /// Lifecycle state.
    pub state: TenantState,
    /// The URL registered in Personio.
    pub webhook_url: String,
    /// Restarts by the supervisor since the last operator action.
    pub restarts: u32,
    /// A sentence an operator can act on.
    pub last_error: Option<String>,
    /// The last full sync.
    pub last_sync: Option<SyncReport>,
    /// Webhook work.
    pub live: LiveStats,
    /// Employees linked to a Learn Amp user.
    pub employees: u64,
    /// Webhook events stored and not yet applied.
    pub pending_events: u64,
    /// Assumed Learn Amp contracts this account lacks (`invitation`, `leave_date`,
    /// `avatar`), each with the RFC 3339 time it was last found missing; tried again a
    /// day after that time.
    pub learnamp_unsupported: BTreeMap<String, String>,
    /// A running full sync's phase and steps; `null` otherwise. Filled in when the view
    /// is read (see [`TenantViews::set_progress`]).
    #[serde(default)]
    pub progress: Option<Progress>,
    /// How and when the tenant was connected to Personio; `null` while it awaits its
    /// connection.
    pub connection: Option<ConnectionInfo>,
}

impl TenantView {
    /// A fresh view for a tenant that is starting.
    pub fn starting(id: &str, webhook_url: String) -> Self {
        Self {
            id: id.to_string(),
            state: TenantState::Starting,
            webhook_url,
            restarts: 0,
            last_error: None,
            last_sync: None,
            live: LiveStats::default(),
            employees: 0,
            pending_events: 0,
            learnamp_unsupported: BTreeMap::new(),
            progress: None,
            connection: None,
        }
    }
}

/// Every tenant's view, by tenant id.
#[derive(Default)]
pub struct TenantViews {
    views: Mutex<BTreeMap<String, TenantView>>,
    /// Each running tenant's progress cell, read into its view on the way out.
    progress: Mutex<BTreeMap<String, Arc<SyncProgress>>>,
}

impl TenantViews {
    /// Adds (or replaces) a tenant's view.
    pub fn insert(&self, view: TenantView) {
        lock(&self.views).insert(view.id.clone(), view);
    }

    /// Adds a tenant's view unless it has one.
    pub fn insert_if_absent(&self, view: TenantView) {
        lock(&self.views).entry(view.id.clone()).or_insert(view);
    }

    /// Adds (or replaces) the view of a tenant another node runs, as that node
    /// published it (its `progress` included: no local progress cell applies).
    pub fn insert_mirrored(&self, view: TenantView) {
        let mut views = lock(&self.views);
        lock(&self.progress).remove(&view.id);
        views.insert(view.id.clone(), view);
    }

    /// Removes a tenant's view.
    pub fn remove(&self, id: &str) {
        lock(&self.views).remove(id);
        lock(&self.progress).remove(id);
    }

    /// Sets the progress cell a tenant's full sync writes to (a restarted tenant
    /// brings a new one); its views show it as `progress`.
    pub fn set_progress(&self, id: &str, progress: Arc<SyncProgress>) {
        lock(&self.progress).insert(id.to_string(), progress);
    }

    /// `view` with its tenant's current progress.
    fn with_progress(&self, mut view: TenantView) -> TenantView {
        // A mirrored view has no local cell and keeps the progress its owner published.
        if let Some(progress) = lock(&self.progress).get(&view.id) {
            view.progress = progress.snapshot();
        }
        view
    }

    /// One tenant's view.
    pub fn view(&self, id: &str) -> Option<TenantView> {
        let view = lock(&self.views).get(id).cloned()?;
        Some(self.with_progress(view))
    }

    /// Every view, by id.
    pub fn views(&self) -> Vec<TenantView> {
        let mut views: Vec<TenantView> = lock(&self.views).values().cloned().collect();
        let progress = lock(&self.progress);
        for view in &mut views {
            if let Some(cell) = progress.get(&view.id) {
                view.progress = cell.snapshot();
            }
        }
        views
    }

    /// Changes a tenant's view in place (no-op for an unknown tenant).
    pub fn update(&self, id: &str, change: impl FnOnce(&mut TenantView)) {
        if let Some(view) = lock(&self.views).get_mut(id) {
            change(view);
        }
    }

    /// Counts one more stored event of tenant `id` as pending (no-op for an unknown
    /// tenant); whether the tenant is known is the answer.
    pub fn event_stored(&self, id: &str) -> bool {
        let mut views = lock(&self.views);
        let Some(view) = views.get_mut(id) else {
            return false;
        };
        view.pending_events += 1;
        true
    }

    /// Events of tenant `id` stored and not yet applied (0 for an unknown tenant).
    pub fn pending_events(&self, id: &str) -> u64 {
        lock(&self.views)
            .get(id)
            .map_or(0, |view| view.pending_events)
    }

    /// Number of tenants per state.
    pub fn count_by_state(&self) -> BTreeMap<String, u64> {
        let views = lock(&self.views);
        let mut counts = BTreeMap::new();
        for view in views.values() {
            let state = serde_json::to_value(view.state)
                .ok()
                .and_then(|value| value.as_str().map(str::to_string))
                .unwrap_or_default();
            *counts.entry(state).or_insert(0) += 1;
        }
        counts
    }
}
