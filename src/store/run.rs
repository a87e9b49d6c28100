//! Whether the last serving process stopped cleanly. `serve` marks the store running
//! (durably) when it starts and clears the mark after its final flush on a clean
//! shutdown; a mark found at start means the last run was killed or crashed, and sled
//! may have lost writes of its last half second (e.g. the record of fields just written
//! to Learn Amp). Every tenant whose initial sync is done is then marked for one full
//! reconciliation, durably, until a full sync completes.

use super::{Store, StoreError, TENANT_PREFIX, TenantStore};

/// `meta` key present while a serving process runs.
const RUNNING_KEY: &str = "running";
/// Tenant key present while a reconciliation after an unclean stop is owed.
const RECONCILE_DUE_KEY: &str = "state\0reconcile_due";

/// How the previous serving process on this store ended, as found by
/// [`Store::begin_run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviousRun {
    /// It stopped cleanly, or there was none (a fresh data dir).
    Clean,
    /// It did not stop cleanly; this many tenants were marked to reconcile.
    Unclean {
        /// Tenants marked for a reconciliation at start.
        tenants: usize,
    },
}

impl Store {
    /// Marks the store as used by a running service and makes that durable. If the
    /// mark was already there (the last run did not end with [`Store::end_run`]) and
    /// `reconcile`, every tenant whose initial sync is done is first marked to reconcile
    /// (see [`TenantStore::reconcile_due`]).
    pub async fn begin_run(&self, reconcile: bool) -> Result<PreviousRun, StoreError> {
        let running = self.backend.meta_get(RUNNING_KEY.as_bytes()).await?;
        let previous = if running.is_some() {
            let mut tenants = 0;
            for (key, _) in self
                .backend
                .meta_scan_prefix(TENANT_PREFIX.as_bytes())
                .await?
            {
                let id = String::from_utf8_lossy(&key[TENANT_PREFIX.len()..]).into_owned();
                let tenant = self.tenant(&id).await?;
                if reconcile && tenant.initial_sync_done()? {
                    tenant.tree.insert(RECONCILE_DUE_KEY, b"1".as_slice())?;
                    tenants += 1;
                }
            }
            PreviousRun::Unclean { tenants }
        } else {
            PreviousRun::Clean
        };
        self.backend
            .meta_insert(RUNNING_KEY.as_bytes(), b"1".to_vec())
            .await?;
        self.flush().await?;
        Ok(previous)
    }

    /// Clears the running mark and makes that durable: called after the final flush of
    /// a clean shutdown.
    pub async fn end_run(&self) -> Result<(), StoreError> {
        self.backend.meta_remove(RUNNING_KEY.as_bytes()).await?;
        self.flush().await
    }
}

impl TenantStore {
    /// Whether a full reconciliation is owed because the service did not stop cleanly
    /// since this tenant's last full sync.
    pub fn reconcile_due(&self) -> Result<bool, StoreError> {
        self.tree.contains_key(RECONCILE_DUE_KEY)
    }

    /// Owes one full reconciliation (durable once flushed): the tenant's Personio
    /// connection was replaced, and what changed while it was away is read again.
    pub fn mark_reconcile_due(&self) -> Result<(), StoreError> {
        self.tree.insert(RECONCILE_DUE_KEY, b"1".as_slice())?;
        Ok(())
    }

    /// Forgets the owed reconciliation (a full sync completed).
    pub fn clear_reconcile_due(&self) -> Result<(), StoreError> {
        self.tree.remove(RECONCILE_DUE_KEY)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::on_every_backend_reopening;

    fn spec(id: &str) -> crate::domain::tenant::TenantSpec {
        crate::domain::tenant::parse_spec(serde_json::json!({
            "id": id,
            "personio": {"base_url": "http://p", "client_id": "a", "client_secret": "b"},
            "learnamp": {"base_url": "http://l", "client_id": "c", "client_secret": "d"}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_run_without_a_clean_end_marks_synced_tenants_to_reconcile() {
        on_every_backend_reopening(
            "a_run_without_a_clean_end_marks_synced_tenants_to_reconcile",
            |data| async move {
                {
                    let store = data.open().await;
                    assert_eq!(
                        store.begin_run(true).await.unwrap(),
                        PreviousRun::Clean,
                        "fresh"
                    );
                    for id in ["synced", "new"] {
                        assert!(store.insert_new_tenant_spec(&spec(id)).await.unwrap());
                    }
                    store
                        .tenant("synced")
                        .await
                        .unwrap()
                        .mark_initial_sync_done()
                        .unwrap();
                    store.end_run().await.unwrap();
                }
                {
                    let store = data.open().await;
                    assert_eq!(
                        store.begin_run(true).await.unwrap(),
                        PreviousRun::Clean,
                        "clean end"
                    );
                    assert!(
                        !store
                            .tenant("synced")
                            .await
                            .unwrap()
                            .reconcile_due()
                            .unwrap()
                    );
                    // Dropped without `end_run`: a kill.
                }
                let store = data.open().await;
                assert_eq!(
                    store.begin_run(true).await.unwrap(),
                    PreviousRun::Unclean { tenants: 1 }
                );
                let synced = store.tenant("synced").await.unwrap();
                assert!(synced.reconcile_due().unwrap());
                assert!(!store.tenant("new").await.unwrap().reconcile_due().unwrap());
                synced.clear_reconcile_due().unwrap();
                assert!(!synced.reconcile_due().unwrap());
            },
        )
        .await;
    }
}
