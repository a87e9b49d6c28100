//! The HTTP front door: admin API, health, metrics and webhooks, on one axum router
//! (served by [`server`]); and the private metrics listener's router.

pub mod admin;
mod delivery;
pub mod error;
pub mod invitations;
pub mod people;
pub mod server;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use ractor::ActorRef;

use crate::actors::router::WebhookRouter;
use crate::actors::status::TenantViews;
use crate::actors::supervisor::SupervisorMsg;
use crate::app::services::Services;
use crate::domain::Secret;
use crate::store::Store;

/// What every handler shares, behind one `Arc` (axum clones the state for every
/// request: one reference count, not a dozen and two strings).
pub type AppState = Arc<AppShared>;

/// The fields of [`AppState`].
pub struct AppShared {
    /// The store.
    pub store: Store,
    /// Every tenant's view.
    pub views: Arc<TenantViews>,
    /// Webhook routes and running tenant actors.
    pub router: Arc<WebhookRouter>,
    /// The supervisor.
    pub supervisor: ActorRef<SupervisorMsg>,
    /// The admin bearer token.
    pub admin_token: Secret,
    /// The services shared with the actors (URLs, clients).
    pub services: Services,
    /// Events a tenant's inbox may hold before deliveries are refused (503).
    pub inbox_cap: u64,
    /// Sessions of the customer pages.
    pub sessions: crate::web::Sessions,
    /// Where tenants run: here, or on other nodes of a cluster.
    pub directory: crate::app::directory::Directory,
    /// Set when tenants run through leases (PostgreSQL backend): a tenant is started
    /// by the lease manager of whichever node takes its lease, never directly; notifying
    /// this makes this node's manager plan at once.
    pub leases: Option<Arc<tokio::sync::Notify>>,
}

impl AppShared {
    /// Starts `spec`'s tenant: directly, or through the leases (announced here, started
    /// by the node that takes its lease).
    pub async fn start_tenant(
        &self,
        spec: crate::domain::tenant::TenantSpec,
    ) -> Result<(), String> {
        match &self.leases {
            Some(wake) => {
                self.services.announce(&spec).await;
                wake.notify_one();
                Ok(())
            }
            None => crate::actors::supervisor::start_tenant(&self.supervisor, spec).await,
        }
    }
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(render_public_metrics))
        .route("/webhooks/personio/{key}", post(webhooks::receive))
        .merge(admin::routes(state.clone()))
        .merge(crate::web::routes())
        .fallback(|| async { error::ApiError::NotFound("no such route".into()) })
        .with_state(state)
}

/// The private metrics listener's router: `/metrics` with the per-tenant series.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(render_all_metrics))
        .fallback(|| async { error::ApiError::NotFound("no such route".into()) })
        .with_state(state)
}

/// `/healthz`: 200 `ok`, or 503 while storage cannot make writes durable.
async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, &'static str) {
    if state.store.flush_failing() {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "storage flushes are failing",
        )
    } else {
        (axum::http::StatusCode::OK, "ok")
    }
}

/// `/metrics` of the front door: no series that names a tenant.
async fn render_public_metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> String {
    crate::metrics::render_public(&gauges(&state))
}

/// `/metrics` of the private listener: every series.
async fn render_all_metrics(axum::extract::State(state): axum::extract::State<AppState>) -> String {
    crate::metrics::render(&gauges(&state))
}

fn gauges(state: &AppState) -> Vec<crate::metrics::Gauge> {
    let mut gauges = Vec::new();
    for (tenant_state, count) in state.views.count_by_state() {
        gauges.push(crate::metrics::Gauge {
            name: "personio_sync_tenants",
            help: "Tenants by state.",
            labels: vec![("state", tenant_state)],
            value: count as f64,
        });
    }
    for view in state.views.views() {
        gauges.push(crate::metrics::Gauge {
            name: "personio_sync_inbox_depth",
            help: "Webhook events stored and not yet applied, by tenant.",
            labels: vec![("tenant_id", view.id.clone())],
            value: view.pending_events as f64,
        });
    }
    gauges
}
