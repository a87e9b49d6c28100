//! The lease manager's host in `serve`: the supervisor runs and stops tenants, the store
//! flushes them and keeps their marks.

use crate::actors::supervisor;
use crate::http::AppState;

use super::Fence;
use super::manager::TenantHost;

/// The tenants of this process, as the lease manager drives them.
pub struct ServeHost {
    state: AppState,
}

impl ServeHost {
    /// The host of the app whose shared state is `state`.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl TenantHost for ServeHost {
    async fn tenants(&self) -> Result<Vec<String>, String> {
        let specs = self
            .state
            .store
            .tenant_specs()
            .await
            .map_err(|error| error.to_string())?;
        Ok(specs.into_iter().map(|spec| spec.id).collect())
    }

    async fn start(&self, tenant: &str) -> Result<(), String> {
        let spec = self
            .state
            .store
            .tenant_spec(tenant)
            .await
            .map_err(|error| error.to_string())?
            .ok_or_else(|| format!("tenant {tenant} is not known"))?;
        supervisor::start_tenant(&self.state.supervisor, spec).await
    }

    async fn stop(&self, tenant: &str) {
        if let Err(error) = supervisor::stop_tenant_here(&self.state.supervisor, tenant).await {
            tracing::error!(tenant_id = %tenant, error = %error, "tenant not stopped here");
        }
    }

    async fn flush(&self, tenant: &str) -> Result<(), String> {
        let store = self
            .state
            .store
            .tenant(tenant)
            .await
            .map_err(|error| error.to_string())?;
        store.flush().await.map_err(|error| error.to_string())
    }

    /// The store does not take fences yet (`PgBackend::set_fence` is not reachable
    /// through `Store`): commits are not checked against the lease, only the lease
    /// manager keeps a tenant on one node.
    fn set_fence(&self, _tenant: &str, _fence: Option<Fence>) {}

    async fn mark_reconcile_due(&self, tenant: &str) -> Result<(), String> {
        let store = self
            .state
            .store
            .tenant(tenant)
            .await
            .map_err(|error| error.to_string())?;
        store
            .mark_reconcile_due()
            .map_err(|error| error.to_string())?;
        store.flush().await.map_err(|error| error.to_string())
    }
}
