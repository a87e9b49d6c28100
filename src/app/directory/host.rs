//! The application as the directory's [`Host`]: its views, router, store and
//! supervisor behind the calls the directory makes.

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::actors::status::TenantViews;
use crate::http::AppShared;

use super::{Command, CommandOutcome, Host};

impl Host for AppShared {
    fn views(&self) -> &TenantViews {
        &self.views
    }

    fn running(&self, id: &str) -> bool {
        self.router.actor(id).is_some()
    }

    fn spec_changed(&self, id: String) -> BoxFuture<'_, ()> {
        async move {
            match self.store.tenant_spec(&id).await {
                Ok(Some(spec)) => self.services.announce(&spec).await,
                Ok(None) => self.forget(&id),
                Err(error) => {
                    tracing::warn!(tenant_id = %id, error = %error, "changed spec unreadable");
                }
            }
        }
        .boxed()
    }

    fn refresh_specs(&self) -> BoxFuture<'_, ()> {
        async move {
            let specs = match self.store.tenant_specs().await {
                Ok(specs) => specs,
                Err(error) => {
                    tracing::warn!(error = %error, "specs not refreshed");
                    return;
                }
            };
            for spec in &specs {
                self.services.announce(spec).await;
            }
            // A tenant created after the list was read has a view but was not in it:
            // only one whose spec is still absent now is forgotten.
            for view in self.views.views() {
                if !specs.iter().any(|spec| spec.id == view.id)
                    && matches!(self.store.tenant_spec(&view.id).await, Ok(None))
                {
                    self.forget(&view.id);
                }
            }
        }
        .boxed()
    }

    fn execute(&self, id: String, command: Command) -> BoxFuture<'_, CommandOutcome> {
        async move { crate::http::admin::execute(self, &id, command).await }.boxed()
    }

    fn wake(&self, id: &str) {
        self.router.wake(id);
    }
}

impl AppShared {
    /// Forgets a tenant deleted by another node (routes, view, tokens), unless it still
    /// runs here; its sessions are stored, and the deleting node ended them.
    fn forget(&self, id: &str) {
        if self.router.actor(id).is_some() {
            return;
        }
        tracing::info!(tenant_id = %id, "tenant deleted on another node: forgotten here");
        self.router.remove(id);
        self.views.remove(id);
        self.services.oidc_tokens.forget(id);
    }
}
