//! The sled backend: one `Db` per process, a `meta` tree for the registry and one tree
//! per tenant (`t/<id>`) holding its records and its inbox.

use std::path::Path;
use std::sync::Arc;

use crate::store::StoreError;
use crate::store::inbox::{self, InboxEvent};
use crate::store::tree::{Entry, Tree};

/// The sled database of this process.
#[derive(Clone)]
pub(crate) struct SledBackend {
    db: sled::Db,
    meta: sled::Tree,
}

/// How long [`open_sled`] waits for the file lock a just-dropped handle of the same
/// directory may still hold (sled's flusher thread releases it shortly after the drop).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

fn tenant_tree_name(id: &str) -> String {
    format!("t/{id}")
}

/// A task of the blocking pool that did not finish (panicked or cancelled).
fn join_failed(error: tokio::task::JoinError) -> StoreError {
    StoreError::Sled(sled::Error::ReportableBug(error.to_string()))
}

impl SledBackend {
    /// Opens (or creates) the database under `dir` with a page cache of `cache_mb` MiB.
    pub(crate) fn open(dir: &Path, cache_mb: u64) -> Result<Self, StoreError> {
        Self::from_db(open_sled(dir, cache_mb)?)
    }

    /// A throw-away in-memory database.
    pub(crate) fn temporary() -> Result<Self, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).open()?)
    }

    fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        let meta = db.open_tree("meta")?;
        Ok(Self { db, meta })
    }

    /// The tree of tenant `id` if it exists (never creates it: a handle kept past a
    /// purge must not bring the tree back).
    fn existing_tenant_tree(&self, id: &str) -> Result<Option<sled::Tree>, StoreError> {
        let name = tenant_tree_name(id);
        let exists = self
            .db
            .tree_names()
            .iter()
            .any(|stored| stored.as_ref() == name.as_bytes());
        Ok(if exists {
            Some(self.db.open_tree(name)?)
        } else {
            None
        })
    }

    pub(crate) async fn meta_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(key)?.map(|value| value.to_vec()))
    }

    pub(crate) async fn meta_scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        self.meta
            .scan_prefix(prefix)
            .map(|entry| {
                let (key, value) = entry?;
                Ok((key.to_vec(), value.to_vec()))
            })
            .collect()
    }

    pub(crate) async fn meta_insert(&self, key: &[u8], value: Vec<u8>) -> Result<(), StoreError> {
        self.meta.insert(key, value)?;
        Ok(())
    }

    pub(crate) async fn meta_remove(&self, key: &[u8]) -> Result<(), StoreError> {
        self.meta.remove(key)?;
        Ok(())
    }

    pub(crate) async fn meta_compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        Ok(self.meta.compare_and_swap(key, old, new)?.is_ok())
    }

    pub(crate) async fn open_tenant(&self, id: &str) -> Result<Tree, StoreError> {
        Ok(Tree::Sled(self.db.open_tree(tenant_tree_name(id))?))
    }

    pub(crate) async fn tenant_data_ids(&self) -> Result<Vec<String>, StoreError> {
        let prefix = tenant_tree_name("");
        Ok(self
            .db
            .tree_names()
            .iter()
            .filter_map(|name| std::str::from_utf8(name).ok())
            .filter_map(|name| name.strip_prefix(&prefix))
            .map(str::to_string)
            .collect())
    }

    pub(crate) async fn has_tenant_data(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .tree_names()
            .iter()
            .any(|name| name.as_ref() == tenant_tree_name(id).as_bytes()))
    }

    pub(crate) async fn drop_tenant_data(&self, id: &str) -> Result<(), StoreError> {
        self.db.drop_tree(tenant_tree_name(id))?;
        Ok(())
    }

    /// Flushes the whole database, on the blocking pool: sled 0.34's `flush_async` can
    /// lose its wake-up under concurrency (spacejam/sled#1241, #1308; seen here as a
    /// hung benchmark); the blocking flush on the blocking pool does not.
    pub(crate) async fn flush_tenant(&self, _id: &str) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(join_failed)??;
        Ok(())
    }

    pub(crate) async fn inbox_pending(
        &self,
        id: &str,
        limit: usize,
        skip: &(dyn Fn(&InboxEvent) -> bool + Sync),
    ) -> Result<Vec<(u64, InboxEvent)>, StoreError> {
        let Some(tree) = self.existing_tenant_tree(id)? else {
            return Ok(Vec::new());
        };
        let values = tree.scan_prefix(inbox::INBOX_PREFIX).map(|entry| {
            let (key, value) = entry?;
            Ok((inbox::key_id(&key), value.to_vec()))
        });
        inbox::pending_from(values, limit, skip)
    }

    pub(crate) async fn inbox_count(&self, id: &str) -> Result<usize, StoreError> {
        let Some(tree) = self.existing_tenant_tree(id)? else {
            return Ok(0);
        };
        Ok(tree
            .scan_prefix(inbox::INBOX_PREFIX)
            .values()
            .filter_map(Result::ok)
            .map(|value| inbox::live_count(&value))
            .sum())
    }

    pub(crate) async fn inbox_remove(&self, id: &str, sequences: &[u64]) -> Result<(), StoreError> {
        let Some(tree) = self.existing_tenant_tree(id)? else {
            return Ok(());
        };
        let mut batch = sled::Batch::default();
        for (value_id, indexes) in inbox::by_value(sequences) {
            let raw_key = inbox::key(value_id);
            // Only the tenant removes, and the front door only adds new keys, so this
            // read cannot race with another change of the same value.
            let Some(value) = tree.get(&raw_key)? else {
                continue;
            };
            match inbox::without(&raw_key, &value, &indexes)? {
                Some(rest) => batch.insert(raw_key, rest),
                None => batch.remove(raw_key),
            }
        }
        tree.apply_batch(batch)?;
        Ok(())
    }

    pub(crate) async fn inbox_append(
        &self,
        id: &str,
        events: &[InboxEvent],
    ) -> Result<Vec<u64>, StoreError> {
        append(&self.db, id, events)
    }

    /// Stores the events of each tenant, then flushes the database (on the blocking
    /// pool, see [`Self::flush_tenant`]).
    pub(crate) async fn commit_group(
        &self,
        events_by_tenant: Vec<(Arc<str>, Vec<InboxEvent>)>,
    ) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || write_and_flush(&db, &events_by_tenant))
            .await
            .map_err(join_failed)?
    }

    pub(crate) async fn next_generated_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }

    pub(crate) async fn advance_generated_ids(&self, next: u64) -> Result<(), StoreError> {
        while self.db.generate_id()? + 1 < next {}
        Ok(())
    }
}

/// Appends events to the inbox of tenant `id` in as few values as a group holds.
fn append(db: &sled::Db, id: &str, events: &[InboxEvent]) -> Result<Vec<u64>, StoreError> {
    let tree = db.open_tree(tenant_tree_name(id))?;
    let mut sequences = Vec::with_capacity(events.len());
    for group in events.chunks(inbox::MAX_EVENTS_PER_VALUE) {
        let value_id = db.generate_id()?;
        tree.insert(
            inbox::key(value_id),
            inbox::encode_group(group, group.len()),
        )?;
        sequences.extend((0..group.len()).map(|index| inbox::sequence(value_id, index)));
    }
    Ok(sequences)
}

fn write_and_flush(
    db: &sled::Db,
    events_by_tenant: &[(Arc<str>, Vec<InboxEvent>)],
) -> Result<(), StoreError> {
    for (tenant_id, events) in events_by_tenant {
        append(db, tenant_id, events)?;
    }
    db.flush()?;
    Ok(())
}

/// Opens sled under `dir`, retrying while its file lock is held, for at most
/// [`LOCK_WAIT`]; a lock still held after that (another live process) is the error.
fn open_sled(dir: &Path, cache_mb: u64) -> Result<sled::Db, sled::Error> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        let result = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_mb.saturating_mul(1024 * 1024))
            .open();
        match result {
            Err(sled::Error::Io(error))
                if error.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}
