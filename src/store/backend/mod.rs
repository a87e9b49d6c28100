//! The storage primitives the semantic layer (`Store`, `TenantStore`) is written over,
//! one variant per backend. Keys and values are the same bytes on every backend.
//! Only this module matches on the variant.

pub(crate) mod postgres;
mod sled;

use std::sync::Arc;

pub(crate) use self::postgres::PgBackend;
pub(crate) use self::sled::SledBackend;
use super::StoreError;
use super::inbox::InboxEvent;
use super::tree::{Entry, Tree};

/// The storage of this process.
pub(crate) enum Backend {
    /// One sled database on local disk.
    Sled(SledBackend),
    /// A PostgreSQL database, possibly shared by several nodes.
    Postgres(PgBackend),
}

impl Backend {
    /// The PostgreSQL backend, if this is one (the cluster's own tables, inbox
    /// notifications).
    pub(crate) fn postgres(&self) -> Option<&PgBackend> {
        match self {
            Self::Sled(_) => None,
            Self::Postgres(backend) => Some(backend),
        }
    }

    /// The `meta` value under `key`.
    pub(crate) async fn meta_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Self::Sled(backend) => backend.meta_get(key).await,
            Self::Postgres(backend) => Ok(backend.meta_get(key).await?),
        }
    }

    /// Every `meta` entry whose key starts with `prefix`, in key order.
    pub(crate) async fn meta_scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        match self {
            Self::Sled(backend) => backend.meta_scan_prefix(prefix).await,
            Self::Postgres(backend) => Ok(backend.meta_scan_prefix(prefix).await?),
        }
    }

    /// Sets the `meta` value under `key` (on sled durable at the next flush).
    pub(crate) async fn meta_insert(&self, key: &[u8], value: Vec<u8>) -> Result<(), StoreError> {
        match self {
            Self::Sled(backend) => backend.meta_insert(key, value).await,
            Self::Postgres(backend) => Ok(backend.meta_insert(key, &value).await?),
        }
    }

    /// Removes the `meta` value under `key` (on sled durable at the next flush).
    pub(crate) async fn meta_remove(&self, key: &[u8]) -> Result<(), StoreError> {
        match self {
            Self::Sled(backend) => backend.meta_remove(key).await,
            Self::Postgres(backend) => Ok(backend.meta_remove(key).await?),
        }
    }

    /// Sets the `meta` value under `key` to `new` (`None`: removes it) only if it is
    /// `old` now (`None`: absent); whether it did (on sled durable at the next flush).
    pub(crate) async fn meta_compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        match self {
            Self::Sled(backend) => backend.meta_compare_and_swap(key, old, new).await,
            Self::Postgres(backend) => Ok(backend.meta_compare_and_swap(key, old, new).await?),
        }
    }

    /// The tree of tenant `id` (created if it has none).
    pub(crate) async fn open_tenant(&self, id: &str) -> Result<Tree, StoreError> {
        match self {
            Self::Sled(backend) => backend.open_tenant(id).await,
            Self::Postgres(backend) => backend.open_tenant(id).await,
        }
    }

    /// The ids of every tenant with stored data (tenants deleted without purge too).
    pub(crate) async fn tenant_data_ids(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Self::Sled(backend) => backend.tenant_data_ids().await,
            Self::Postgres(backend) => backend.tenant_ids().await,
        }
    }

    /// Whether tenant `id` has stored data.
    pub(crate) async fn has_tenant_data(&self, id: &str) -> Result<bool, StoreError> {
        match self {
            Self::Sled(backend) => backend.has_tenant_data(id).await,
            Self::Postgres(backend) => backend.has_tenant(id).await,
        }
    }

    /// Removes every record and inbox event of tenant `id`.
    pub(crate) async fn drop_tenant_data(&self, id: &str) -> Result<(), StoreError> {
        match self {
            Self::Sled(backend) => backend.drop_tenant_data(id).await,
            Self::Postgres(backend) => backend.drop_tenant(id).await,
        }
    }

    /// Makes the writes to tenant `id`'s tree durable (sled: the whole database).
    pub(crate) async fn flush_tenant(&self, id: &str) -> Result<(), StoreError> {
        match self {
            Self::Sled(backend) => backend.flush_tenant(id).await,
            Self::Postgres(backend) => Ok(backend.commit_tenant(id).await?),
        }
    }

    /// Pending inbox events of tenant `id` with their sequence numbers, oldest first:
    /// whole stored values until at least `limit` events not held back by `skip` are
    /// read (or all, if fewer are pending).
    pub(crate) async fn inbox_pending(
        &self,
        id: &str,
        limit: usize,
        skip: &(dyn Fn(&InboxEvent) -> bool + Sync),
    ) -> Result<Vec<(u64, InboxEvent)>, StoreError> {
        match self {
            Self::Sled(backend) => backend.inbox_pending(id, limit, skip).await,
            Self::Postgres(backend) => backend.inbox_pending(id, limit, skip).await,
        }
    }

    /// Number of pending inbox events of tenant `id`.
    pub(crate) async fn inbox_count(&self, id: &str) -> Result<usize, StoreError> {
        match self {
            Self::Sled(backend) => backend.inbox_count(id).await,
            Self::Postgres(backend) => Ok(backend.inbox_count(id).await?),
        }
    }

    /// Removes processed inbox events of tenant `id`, atomically (unknown sequence
    /// numbers are ignored).
    pub(crate) async fn inbox_remove(&self, id: &str, sequences: &[u64]) -> Result<(), StoreError> {
        match self {
            Self::Sled(backend) => backend.inbox_remove(id, sequences).await,
            Self::Postgres(backend) => backend.inbox_remove(id, sequences).await,
        }
    }

    /// Appends events to the inbox of tenant `id`, oldest first, and returns their
    /// sequence numbers; durable only with the next [`Self::commit_group`] (tests,
    /// benchmarks; the front door goes through the group commit).
    pub(crate) async fn inbox_append(
        &self,
        id: &str,
        events: &[InboxEvent],
    ) -> Result<Vec<u64>, StoreError> {
        match self {
            Self::Sled(backend) => backend.inbox_append(id, events).await,
            Self::Postgres(backend) => backend.inbox_append(id, events).await,
        }
    }

    /// Stores the events of each tenant (in order) and makes them and every earlier
    /// write of this process durable.
    pub(crate) async fn commit_group(
        &self,
        events_by_tenant: Vec<(Arc<str>, Vec<InboxEvent>)>,
    ) -> Result<(), StoreError> {
        match self {
            Self::Sled(backend) => backend.commit_group(events_by_tenant).await,
            Self::Postgres(backend) => backend.commit_group(events_by_tenant).await,
        }
    }

    /// The next generated id (consumes one; inbox values are numbered by them).
    pub(crate) async fn next_generated_id(&self) -> Result<u64, StoreError> {
        match self {
            Self::Sled(backend) => backend.next_generated_id().await,
            Self::Postgres(backend) => Ok(backend.next_generated_id().await?),
        }
    }

    /// Advances the id generator until it hands out ids of at least `next`.
    pub(crate) async fn advance_generated_ids(&self, next: u64) -> Result<(), StoreError> {
        match self {
            Self::Sled(backend) => backend.advance_generated_ids(next).await,
            Self::Postgres(backend) => Ok(backend.advance_generated_ids(next).await?),
        }
    }

    /// The inbox values of tenant `id` kept outside its tree, as raw tree entries
    /// (`inbox\0<id>` keys): sled keeps them in the tree (none here), PostgreSQL in its
    /// `inbox` table.
    pub(crate) async fn inbox_raw_entries(&self, id: &str) -> Result<Vec<Entry>, StoreError> {
        match self {
            Self::Sled(_) => Ok(Vec::new()),
            Self::Postgres(backend) => backend.inbox_raw_entries(id).await,
        }
    }

    /// Writes one raw entry of tenant `id`'s tree (import); on PostgreSQL an inbox
    /// value goes to the inbox table.
    pub(crate) async fn put_raw(
        &self,
        id: &str,
        tree: &Tree,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), StoreError> {
        match self {
            Self::Sled(_) => tree.insert(key, value),
            Self::Postgres(backend) => backend.put_raw(id, tree, key, value).await,
        }
    }
}
