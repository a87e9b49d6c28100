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

    async fn tenant_store(&self, tenant: &str) -> Result<crate::store::TenantStore, String> {
        self.state
            .store
            .tenant(tenant)
            .await
            .map_err(|error| error.to_string())
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
        let store = self.tenant_store(tenant).await?;
        store.flush().await.map_err(|error| error.to_string())
    }

    /// The store checks the fence on every commit for the tenant; the directory
    /// publishes (and answers the commands of) the tenants fenced here. A lost lease
    /// also drops the tenant's cached rows, so a later lease here reads what the
    /// other owner wrote meanwhile instead of a stale tree.
    fn set_fence(&self, tenant: &str, fence: Option<Fence>) {
        let held = fence.is_some();
        self.state.store.set_fence(tenant, fence);
        if let crate::app::directory::Directory::Postgres(directory) = &self.state.directory {
            directory.set_owned(tenant, held);
        }
        if !held {
            let store = self.state.store.clone();
            let tenant = tenant.to_string();
            tokio::spawn(async move { store.forget_cached(&tenant).await });
        }
    }

    async fn mark_reconcile_due(&self, tenant: &str) -> Result<(), String> {
        let store = self.tenant_store(tenant).await?;
        store
            .mark_reconcile_due()
            .map_err(|error| error.to_string())?;
        store.flush().await.map_err(|error| error.to_string())
    }
}
