//! Cluster mode in `serve`: the lease manager ([`crate::cluster::manager`]) decides
//! which tenants run on this node; the application is its [`TenantHost`] (the
//! supervisor starts and stops the actors, the store holds the fences).

use crate::cluster::Fence;
use crate::cluster::manager::TenantHost;
use crate::http::AppState;

/// The application as the lease manager's host.
pub struct LeaseHost {
    /// The application's shared state.
    pub state: AppState,
}

impl TenantHost for LeaseHost {
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
            .ok_or_else(|| format!("tenant {tenant} has no stored spec"))?;
        self.state.services.announce(&spec).await;
        crate::actors::supervisor::start_tenant(&self.state.supervisor, spec).await
    }

    async fn stop(&self, tenant: &str) {
        if let Err(error) =
            crate::actors::supervisor::stop_tenant_here(&self.state.supervisor, tenant).await
        {
            tracing::warn!(tenant_id = %tenant, error = %error, "tenant not stopped here");
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

    fn set_fence(&self, tenant: &str, fence: Option<Fence>) {
        if let crate::app::directory::Directory::Postgres(directory) = &self.state.directory {
            directory.set_owned(tenant, fence.is_some());
        }
        self.state.store.set_fence(tenant, fence.clone());
        if fence.is_none() {
            let store = self.state.store.clone();
            let tenant = tenant.to_string();
            tokio::spawn(async move { store.forget_cached(&tenant).await });
        }
    }

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
