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

#[cfg(test)]
mod tests {
    use super::super::backend::postgres::testing::fresh_database;
    use super::super::conformance::postgres_store;
    use super::super::{EmployeeRecord, Fence, StoreError};

    /// A handle that outlived its lease (tree retired) or reads a snapshot (no lease
    /// here) cannot report its writes as stored: its flush is `Fenced`, never `Ok`.
    #[tokio::test]
    async fn a_handle_without_the_lease_cannot_flush_its_writes() {
        let Some(database) =
            fresh_database("a_handle_without_the_lease_cannot_flush_its_writes").await
        else {
            return;
        };
        let store = postgres_store(&database).await;
        store.enable_fencing();
        let backend = store.backend.postgres().unwrap().clone();
        sqlx::query(
            "INSERT INTO leases (tenant, owner, epoch, expires_at) VALUES ('t', 'me', 1, now() + interval '30 seconds')",
        )
        .execute(backend.pool())
        .await
        .unwrap();
        let fence = Fence {
            owner: "me".into(),
            epoch: 1,
        };
        store.set_fence("t", Some(fence.clone()));
        let owner = store.tenant("t").await.unwrap();
        owner.put_employee("1", &EmployeeRecord::default()).unwrap();
        owner.flush().await.unwrap();

        // The lease is lost and the tree evicted while the handle is still held.
        store.set_fence("t", None);
        backend.evict("t").await;
        owner.put_employee("2", &EmployeeRecord::default()).unwrap();
        assert!(matches!(
            owner.flush().await,
            Err(StoreError::Fenced { .. })
        ));
        // The same lease taken again: a new shared tree, still not the old handle's.
        store.set_fence("t", Some(fence));
        let again = store.tenant("t").await.unwrap();
        assert!(again.employee("1").unwrap().is_some());
        assert!(matches!(
            owner.flush().await,
            Err(StoreError::Fenced { .. })
        ));
        again.flush().await.unwrap();
        assert!(
            again.employee("2").unwrap().is_none(),
            "the retired write is gone"
        );

        // No lease here: a snapshot, whose writes cannot be flushed either.
        let snapshot = store.tenant("other").await.unwrap();
        snapshot
            .put_employee("3", &EmployeeRecord::default())
            .unwrap();
        assert!(matches!(
            snapshot.flush().await,
            Err(StoreError::Fenced { .. })
        ));
    }
}
