//! Raw, record-kind-agnostic access for `personio-sync export` and `import`: every key
//! and value of a tenant tree as bytes, the other `meta` entries, and the backend's id
//! generator (the inbox sequence numbers come from it).

use super::sessions::SESSION_PREFIX;
use super::{KEY_CHECK_KEY, Store, StoreError, TENANT_PREFIX, TenantStore};

/// A raw key and value.
pub(crate) type RawEntry = (Vec<u8>, Vec<u8>);

impl Store {
    /// The ids of every tenant tree (tenants deleted without purge included).
    pub(crate) async fn tenant_tree_ids(&self) -> Result<Vec<String>, StoreError> {
        self.backend.tenant_data_ids().await
    }

    /// `meta` entries other than tenant specs and the key check.
    pub(crate) async fn other_meta_entries(&self) -> Result<Vec<RawEntry>, StoreError> {
        let mut entries = self.backend.meta_scan_prefix(b"").await?;
        entries.retain(|(key, _)| {
            !key.starts_with(TENANT_PREFIX.as_bytes())
                && !key.starts_with(SESSION_PREFIX.as_bytes())
                && key != KEY_CHECK_KEY.as_bytes()
        });
        Ok(entries)
    }

    /// Writes a raw `meta` entry (never a tenant spec or the key check).
    pub(crate) async fn put_other_meta(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if key.starts_with(TENANT_PREFIX.as_bytes())
            || key.starts_with(SESSION_PREFIX.as_bytes())
            || key == KEY_CHECK_KEY.as_bytes()
        {
            return Ok(());
        }
        self.backend.meta_insert(key, value.to_vec()).await
    }

    /// Whether the database holds no tenant spec and no tenant tree.
    pub(crate) async fn holds_no_tenants(&self) -> Result<bool, StoreError> {
        Ok(self
            .backend
            .meta_scan_prefix(TENANT_PREFIX.as_bytes())
            .await?
            .is_empty()
            && self.tenant_tree_ids().await?.is_empty())
    }

    /// The next id the generator hands out (consumes one).
    pub(crate) async fn next_generated_id(&self) -> Result<u64, StoreError> {
        self.backend.next_generated_id().await
    }

    /// Advances the id generator until it hands out ids of at least `next`.
    pub(crate) async fn advance_generated_ids(&self, next: u64) -> Result<(), StoreError> {
        self.backend.advance_generated_ids(next).await
    }
}

impl TenantStore {
    /// Every key and value of the tenant's tree, inbox values included (as sled
    /// stores them), in key order.
    pub(crate) async fn raw_entries(&self) -> Result<Vec<RawEntry>, StoreError> {
        let mut entries: Vec<RawEntry> = self.tree.iter().collect::<Result<_, _>>()?;
        entries.extend(self.backend.inbox_raw_entries(&self.id).await?);
        entries.sort();
        Ok(entries)
    }

    /// Writes one raw entry (an inbox value to the backend's inbox).
    pub(crate) async fn put_raw(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.backend.put_raw(&self.id, &self.tree, key, value).await
    }
}

#[cfg(test)]
mod tests {
    use crate::store::conformance::on_every_backend;

    #[tokio::test]
    async fn the_id_generator_moves_past_a_given_id() {
        on_every_backend(
            "the_id_generator_moves_past_a_given_id",
            |store| async move {
                store.advance_generated_ids(1_000).await.unwrap();
                assert!(store.next_generated_id().await.unwrap() >= 1_000);
            },
        )
        .await;
    }

    #[tokio::test]
    async fn raw_entries_round_trip_and_trees_are_listed() {
        on_every_backend(
            "raw_entries_round_trip_and_trees_are_listed",
            |store| async move {
                assert!(store.holds_no_tenants().await.unwrap());
                let tenant = store.tenant("acme").await.unwrap();
                tenant.put_raw(b"x\0\x01", b"\xff").await.unwrap();
                assert_eq!(
                    tenant.raw_entries().await.unwrap(),
                    vec![(b"x\0\x01".to_vec(), b"\xff".to_vec())]
                );
                assert_eq!(
                    store.tenant_tree_ids().await.unwrap(),
                    vec!["acme".to_string()]
                );
                assert!(!store.holds_no_tenants().await.unwrap());
                store.put_other_meta(b"other", b"1").await.unwrap();
                store.put_other_meta(b"tenant\0x", b"1").await.unwrap();
                assert_eq!(
                    store.other_meta_entries().await.unwrap(),
                    vec![(b"other".to_vec(), b"1".to_vec())]
                );
            },
        )
        .await;
    }
}
