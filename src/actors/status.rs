//! The status board: every tenant's view (state, errors, counts) and the reference to
//! its running actor. Tenants write their own entry; the admin API reads it without
//! ever waiting on a tenant or the supervisor.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use ractor::ActorRef;
use serde::{Deserialize, Serialize};

use crate::domain::Secret;
use crate::domain::report::SyncReport;
use crate::locks::lock;

use super::tenant::TenantMsg;

/// A tenant's lifecycle state, as the contract names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantState {
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveStats {
    /// Events applied since the tenant was created.
    pub events_applied: u64,
    /// RFC 3339 time of the last applied event.
    pub last_event_at: Option<String>,
}

/// The tenant view of the admin API. Holds no secret but the webhook URL's key, which
/// the contract shows to operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        }
    }
}

struct Entry {
    view: TenantView,
    actor: Option<ActorRef<TenantMsg>>,
    /// An `InboxWake` was cast and the actor has not taken it yet: the front door
    /// does not cast another (one wake drains everything stored before it is taken).
    wake_pending: bool,
}

/// Every tenant's view and actor reference, and the webhook routing table.
#[derive(Default)]
pub struct StatusBoard {
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Webhook URL key → (tenant id, expected `Authorization` value).
    webhook_routes: Mutex<HashMap<String, Arc<WebhookRoute>>>,
}

/// Where a webhook delivery goes.
pub struct WebhookRoute {
    /// The tenant.
    pub tenant_id: Arc<str>,
    /// The token Personio must send verbatim.
    pub token: Secret,
    /// The secret deliveries must be signed with, if the tenant has one.
    pub signing_secret: Option<Secret>,
}

impl StatusBoard {
    /// Adds (or replaces) a tenant's view.
    pub fn insert(&self, view: TenantView) {
        let mut entries = lock(&self.entries);
        let actor = entries.remove(&view.id).and_then(|entry| entry.actor);
        entries.insert(
            view.id.clone(),
            Entry {
                view,
                actor,
                wake_pending: false,
            },
        );
    }

    /// Removes a tenant.
    pub fn remove(&self, id: &str) {
        lock(&self.entries).remove(id);
    }

    /// One tenant's view.
    pub fn view(&self, id: &str) -> Option<TenantView> {
        let entries = lock(&self.entries);
        entries.get(id).map(|entry| entry.view.clone())
    }

    /// Every view, by id.
    pub fn views(&self) -> Vec<TenantView> {
        let entries = lock(&self.entries);
        entries.values().map(|entry| entry.view.clone()).collect()
    }

    /// Changes a tenant's view in place (no-op for an unknown tenant).
    pub fn update(&self, id: &str, change: impl FnOnce(&mut TenantView)) {
        let mut entries = lock(&self.entries);
        if let Some(entry) = entries.get_mut(id) {
            change(&mut entry.view);
        }
    }

    /// Records (or clears) the running actor of a tenant.
    pub fn set_actor(&self, id: &str, actor: Option<ActorRef<TenantMsg>>) {
        let mut entries = lock(&self.entries);
        if let Some(entry) = entries.get_mut(id) {
            entry.actor = actor;
            entry.wake_pending = false;
        }
    }

    /// Called by the webhook front door once an event of tenant `id` is durably
    /// stored: counts it as pending and wakes the running actor, unless a wake is
    /// already on its way (then that one drains this event too). Coalescing keeps a
    /// flood of deliveries from filling the actor's mailbox with redundant wakes.
    pub fn event_stored(&self, id: &str) {
        let wake = {
            let mut entries = lock(&self.entries);
            let Some(entry) = entries.get_mut(id) else {
                return;
            };
            entry.view.pending_events += 1;
            match &entry.actor {
                Some(actor) if !entry.wake_pending => {
                    entry.wake_pending = true;
                    Some(actor.clone())
                }
                _ => None,
            }
        };
        if let Some(actor) = wake
            && actor.cast(TenantMsg::InboxWake).is_err()
        {
            // The actor is stopping; its successor drains the inbox when it starts.
            self.wake_taken(id);
        }
    }

    /// Events of tenant `id` stored and not yet applied (0 for an unknown tenant).
    pub fn pending_events(&self, id: &str) -> u64 {
        lock(&self.entries)
            .get(id)
            .map_or(0, |entry| entry.view.pending_events)
    }

    /// Called by the tenant actor when it takes an `InboxWake`, before it reads the
    /// inbox: events stored from now on wake it again.
    pub fn wake_taken(&self, id: &str) {
        let mut entries = lock(&self.entries);
        if let Some(entry) = entries.get_mut(id) {
            entry.wake_pending = false;
        }
    }

    /// The running actor of a tenant, if any.
    pub fn actor(&self, id: &str) -> Option<ActorRef<TenantMsg>> {
        let entries = lock(&self.entries);
        entries.get(id).and_then(|entry| entry.actor.clone())
    }

    /// Routes webhook deliveries with URL key `key` to tenant `id`.
    pub fn register_webhook(
        &self,
        id: &str,
        key: &Secret,
        token: &Secret,
        signing_secret: Option<&Secret>,
    ) {
        let mut routes = lock(&self.webhook_routes);
        routes.retain(|_, route| &*route.tenant_id != id);
        routes.insert(
            key.expose().to_string(),
            Arc::new(WebhookRoute {
                tenant_id: id.into(),
                token: token.clone(),
                signing_secret: signing_secret.cloned(),
            }),
        );
    }

    /// Stops routing webhooks to tenant `id`.
    pub fn unregister_webhook(&self, id: &str) {
        let mut routes = lock(&self.webhook_routes);
        routes.retain(|_, route| &*route.tenant_id != id);
    }

    /// The route of a webhook URL key.
    pub fn webhook_route(&self, key: &str) -> Option<Arc<WebhookRoute>> {
        let routes = lock(&self.webhook_routes);
        routes.get(key).cloned()
    }

    /// Number of tenants per state.
    pub fn count_by_state(&self) -> BTreeMap<String, u64> {
        let entries = lock(&self.entries);
        let mut counts = BTreeMap::new();
        for entry in entries.values() {
            let state = serde_json::to_value(entry.view.state)
                .ok()
                .and_then(|value| value.as_str().map(str::to_string))
                .unwrap_or_default();
            *counts.entry(state).or_insert(0) += 1;
        }
        counts
    }
}
