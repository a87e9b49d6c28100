//! The webhook router: where the front door sends a delivery (URL key → tenant, token,
//! signing secret) and the running actor of each tenant, with its coalesced wake.
//! The front door, the admin API and the supervisor read it without ever waiting on a
//! tenant or the supervisor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ractor::ActorRef;

use crate::domain::Secret;
use crate::locks::lock;

use super::status::TenantViews;
use super::tenant::messages::TenantMsg;

/// Where a webhook delivery goes.
pub struct WebhookRoute {
    /// The tenant.
    pub tenant_id: Arc<str>,
    /// The token Personio must send verbatim.
    pub token: Secret,
    /// The secret deliveries must be signed with, if the tenant has one.
    pub signing_secret: Option<Secret>,
    /// A DELETE of the tenant is waiting for the supervisor: deliveries get a 503
    /// (Personio retries it) until the delete completes (no route, 404) or is refused
    /// (the route is registered again).
    pub closing: bool,
}

/// A tenant's running actor.
struct Running {
    actor: ActorRef<TenantMsg>,
    /// An `InboxWake` was cast and the actor has not taken it yet: the front door
    /// does not cast another (one wake drains everything stored before it is taken).
    wake_pending: bool,
}

/// The webhook routing table and every running tenant actor.
pub struct WebhookRouter {
    /// Webhook URL key → route.
    routes: Mutex<HashMap<String, Arc<WebhookRoute>>>,
    /// Tenant id → running actor.
    actors: Mutex<HashMap<String, Running>>,
    /// The views, whose pending counts the front door reads and raises.
    views: Arc<TenantViews>,
}

impl WebhookRouter {
    /// An empty router counting pending events in `views`.
    pub fn new(views: Arc<TenantViews>) -> Self {
        Self {
            routes: Mutex::default(),
            actors: Mutex::default(),
            views,
        }
    }

    /// Routes webhook deliveries with URL key `key` to tenant `id`.
    pub fn register_webhook(
        &self,
        id: &str,
        key: &Secret,
        token: &Secret,
        signing_secret: Option<&Secret>,
    ) {
        let mut routes = lock(&self.routes);
        routes.retain(|_, route| &*route.tenant_id != id);
        routes.insert(
            key.expose().to_string(),
            Arc::new(WebhookRoute {
                tenant_id: id.into(),
                token: token.clone(),
                signing_secret: signing_secret.cloned(),
                closing: false,
            }),
        );
    }

    /// Marks the route of tenant `id` as closing (see [`WebhookRoute::closing`]).
    /// Called by the admin API before it asks the supervisor to stop the tenant.
    pub fn close_webhook(&self, id: &str) {
        let mut routes = lock(&self.routes);
        for route in routes.values_mut() {
            if &*route.tenant_id == id {
                *route = Arc::new(WebhookRoute {
                    tenant_id: route.tenant_id.clone(),
                    token: route.token.clone(),
                    signing_secret: route.signing_secret.clone(),
                    closing: true,
                });
            }
        }
    }

    /// Stops routing webhooks to tenant `id`.
    pub fn unregister_webhook(&self, id: &str) {
        let mut routes = lock(&self.routes);
        routes.retain(|_, route| &*route.tenant_id != id);
    }

    /// The route of a webhook URL key.
    pub fn webhook_route(&self, key: &str) -> Option<Arc<WebhookRoute>> {
        lock(&self.routes).get(key).cloned()
    }

    /// Events of tenant `id` stored and not yet applied (0 for an unknown tenant).
    pub fn pending_events(&self, id: &str) -> u64 {
        self.views.pending_events(id)
    }

    /// Records (or clears) the running actor of a known tenant (one with a view).
    pub fn set_actor(&self, id: &str, actor: Option<ActorRef<TenantMsg>>) {
        let mut actors = lock(&self.actors);
        match actor {
            Some(actor) if self.views.view(id).is_some() => {
                actors.insert(
                    id.to_string(),
                    Running {
                        actor,
                        wake_pending: false,
                    },
                );
            }
            _ => {
                actors.remove(id);
            }
        }
    }

    /// Forgets tenant `id` entirely: its route and its actor.
    pub fn remove(&self, id: &str) {
        self.unregister_webhook(id);
        lock(&self.actors).remove(id);
    }

    /// The running actor of a tenant, if any.
    pub fn actor(&self, id: &str) -> Option<ActorRef<TenantMsg>> {
        lock(&self.actors)
            .get(id)
            .map(|running| running.actor.clone())
    }

    /// Called by the webhook front door once an event of tenant `id` is durably
    /// stored: counts it as pending and wakes the running actor, unless a wake is
    /// already on its way (then that one drains this event too). Coalescing keeps a
    /// flood of deliveries from filling the actor's mailbox with redundant wakes.
    pub fn event_stored(&self, id: &str) {
        if !self.views.event_stored(id) {
            return;
        }
        self.wake(id);
    }

    /// Wakes the running actor of tenant `id` (coalesced, as [`Self::event_stored`]),
    /// without counting an event: the cluster directory calls it when another node
    /// stored a delivery for a tenant run here.
    pub fn wake(&self, id: &str) {
        let wake = {
            let mut actors = lock(&self.actors);
            match actors.get_mut(id) {
                Some(running) if !running.wake_pending => {
                    running.wake_pending = true;
                    Some(running.actor.clone())
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

    /// Called by the tenant actor when it takes an `InboxWake`, before it reads the
    /// inbox: events stored from now on wake it again.
    pub fn wake_taken(&self, id: &str) {
        if let Some(running) = lock(&self.actors).get_mut(id) {
            running.wake_pending = false;
        }
    }
}
