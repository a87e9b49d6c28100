//! Raw, record-kind-agnostic access for `personio-sync export` and `import`: every key
//! and value of a tenant tree as bytes, the other `meta` entries, and sled's id
//! generator (the inbox sequence numbers come from it).

use super::{KEY_CHECK_KEY, Store, StoreError, TENANT_PREFIX, TenantStore, tenant_tree_name};

/// A raw key and value.
pub(crate) type RawEntry = (Vec<u8>, Vec<u8>);

impl Store {
    /// The ids of every tenant tree (tenants deleted without purge included).
    pub(crate) fn tenant_tree_ids(&self) -> Vec<String> {
        let prefix = tenant_tree_name("");
        self.db
            .tree_names()
            .iter()
            .filter_map(|name| std::str::from_utf8(name).ok())
            .filter_map(|name| name.strip_prefix(&prefix))
            .map(str::to_string)
            .collect()
    }

    /// `meta` entries other than tenant specs and the key check.
    pub(crate) fn other_meta_entries(&self) -> Result<Vec<RawEntry>, StoreError> {
        let mut entries = Vec::new();
        for entry in self.meta.iter() {
            let (key, value) = entry?;
            if key.starts_with(TENANT_PREFIX.as_bytes()) || key == KEY_CHECK_KEY.as_bytes() {
                continue;
            }
            entries.push((key.to_vec(), value.to_vec()));
        }
        Ok(entries)
    }

    /// Writes a raw `meta` entry (never a tenant spec or the key check).
    pub(crate) fn put_other_meta(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if key.starts_with(TENANT_PREFIX.as_bytes()) || key == KEY_CHECK_KEY.as_bytes() {
            return Ok(());
        }
        self.meta.insert(key, value)?;
        Ok(())
    }

    /// Whether the database holds no tenant spec and no tenant tree.
    pub(crate) fn holds_no_tenants(&self) -> Result<bool, StoreError> {
        Ok(self.meta.scan_prefix(TENANT_PREFIX).next().is_none()
            && self.tenant_tree_ids().is_empty())
    }

    /// The next id sled's generator hands out (consumes one).
    pub(crate) fn next_generated_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }

    /// Advances sled's id generator until it hands out ids of at least `next`.
    pub(crate) fn advance_generated_ids(&self, next: u64) -> Result<(), StoreError> {
        while self.db.generate_id()? + 1 < next {}
        Ok(())
    }
}

impl TenantStore {
    /// Every key and value of the tenant's tree, in key order.
    pub(crate) fn raw_entries(&self) -> Result<Vec<RawEntry>, StoreError> {
        self.tree
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                Ok((key.to_vec(), value.to_vec()))
            })
            .collect()
    }

    /// Writes one raw entry.
    pub(crate) fn put_raw(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.tree.insert(key, value)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_generator_moves_past_a_given_id() {
        let store = Store::temporary().unwrap();
        store.advance_generated_ids(1_000).unwrap();
        assert!(store.next_generated_id().unwrap() >= 1_000);
    }

    #[test]
    fn raw_entries_round_trip_and_trees_are_listed() {
        let store = Store::temporary().unwrap();
        assert!(store.holds_no_tenants().unwrap());
        let tenant = store.tenant("acme").unwrap();
        tenant.put_raw(b"x\0\x01", b"\xff").unwrap();
        assert_eq!(
            tenant.raw_entries().unwrap(),
            vec![(b"x\0\x01".to_vec(), b"\xff".to_vec())]
        );
        assert_eq!(store.tenant_tree_ids(), vec!["acme".to_string()]);
        assert!(!store.holds_no_tenants().unwrap());
        store.put_other_meta(b"other", b"1").unwrap();
        store.put_other_meta(b"tenant\0x", b"1").unwrap();
        assert_eq!(
            store.other_meta_entries().unwrap(),
            vec![(b"other".to_vec(), b"1".to_vec())]
        );
    }
}
