//! What the cluster directory reaches through the store on PostgreSQL: the pool (for
//! its own tables) and the inbox notifications. Both are `None` on sled.

use super::Store;
pub(crate) use super::backend::postgres::InboxSignal;

impl Store {
    /// The PostgreSQL pool of this store (`None` on sled).
    pub fn postgres_pool(&self) -> Option<sqlx::PgPool> {
        self.backend
            .postgres()
            .map(|backend| backend.pool().clone())
    }

    /// Turns cluster mode on (PostgreSQL; nothing on sled): from now on a commit for a
    /// tenant needs the fence [`Self::set_fence`] gave it, and a tenant without one is
    /// read-only in this process.
    pub fn enable_fencing(&self) {
        if let Some(backend) = self.backend.postgres() {
            backend.enable_fencing();
        }
    }

    /// Records the lease this node holds on `tenant` (`None`: lost or released); called
    /// by the lease manager only.
    pub fn set_fence(&self, tenant: &str, fence: Option<super::Fence>) {
        if let Some(backend) = self.backend.postgres() {
            backend.set_fence(tenant, fence);
        }
    }

    /// Notifications of events stored for any tenant by any node (`None` on sled).
    pub(crate) fn listen_inbox(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<InboxSignal>> {
        self.backend
            .postgres()
            .map(|backend| backend.listen_inbox())
    }
}

impl Store {
    /// Forgets the cached rows of `tenant` (its lease is gone), so a later lease reads
    /// them again from the database.
    pub(crate) async fn forget_cached(&self, tenant: &str) {
        if let Some(backend) = self.backend.postgres() {
            backend.evict(tenant).await;
        }
    }
}
