//! The [`Backend`](crate::store::backend::Backend) primitives on PostgreSQL that need
//! the store's own encodings (inbox groups, sequence numbers, tenant trees) on top of
//! the SQL of `mod.rs`.

use std::sync::Arc;

use super::{InboxValue, PgBackend, PgError};
use crate::store::StoreError;
use crate::store::inbox::{self, InboxEvent};
use crate::store::tree::{Entry, Tree};

impl From<PgError> for StoreError {
    fn from(error: PgError) -> Self {
        match error {
            PgError::Fenced { tenant } => StoreError::Fenced { tenant },
            other => StoreError::Backend(other.to_string()),
        }
    }
}

/// Stored inbox values the first query of [`PgBackend::inbox_pending`] reads (each
/// further one reads twice as many).
const FIRST_PAGE: usize = 16;

/// `events` as stored inbox values: groups of at most
/// [`inbox::MAX_EVENTS_PER_VALUE`], all live.
fn groups(events: &[InboxEvent]) -> Vec<InboxValue> {
    events
        .chunks(inbox::MAX_EVENTS_PER_VALUE)
        .map(|group| (inbox::encode_group(group, group.len()), group.len()))
        .collect()
}

impl PgBackend {
    /// The tree of tenant `id` (see [`PgBackend::open_cached`]).
    pub(crate) async fn open_tenant(&self, id: &str) -> Result<Tree, StoreError> {
        Ok(Tree::Cached(self.open_cached(id).await?))
    }

    /// Ids of the tenants with data: stored rows or inbox events, or rows cached here
    /// and not committed yet.
    pub(crate) async fn tenant_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids = self.tenant_data_ids().await?;
        ids.extend(self.cached_tenants_with_rows());
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Whether tenant `id` has data (see [`Self::tenant_ids`]).
    pub(crate) async fn has_tenant(&self, id: &str) -> Result<bool, StoreError> {
        if self.cached(id).is_some_and(|tree| !tree.is_empty()) {
            return Ok(true);
        }
        Ok(self.has_tenant_data(id).await?)
    }

    /// Removes every row and inbox event of tenant `id`; handles still held write to a
    /// tree nobody commits.
    pub(crate) async fn drop_tenant(&self, id: &str) -> Result<(), StoreError> {
        self.evict(id).await;
        Ok(self.drop_tenant_data(id).await?)
    }

    /// Pending inbox events of tenant `id` (see `inbox::pending_from`), reading stored
    /// values page by page until enough are found.
    pub(crate) async fn inbox_pending(
        &self,
        id: &str,
        limit: usize,
        skip: &(dyn Fn(&InboxEvent) -> bool + Sync),
    ) -> Result<Vec<(u64, InboxEvent)>, StoreError> {
        let mut values: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut page = FIRST_PAGE;
        loop {
            let after = values.last().map(|(value_id, _)| *value_id);
            let fetched = self.inbox_values(id, after, page).await?;
            let exhausted = fetched.len() < page;
            values.extend(fetched);
            let pending = inbox::pending_from(values.iter().cloned().map(Ok), limit, skip)?;
            if exhausted || pending.len() >= limit {
                return Ok(pending);
            }
            page = page.saturating_mul(2);
        }
    }

    /// Removes processed inbox events of tenant `id` in one (fenced) transaction.
    pub(crate) async fn inbox_remove(&self, id: &str, sequences: &[u64]) -> Result<(), StoreError> {
        let by_value = inbox::by_value(sequences);
        let value_ids: Vec<u64> = by_value.keys().copied().collect();
        // Only the tenant's owner removes, and inserts only add new ids, so this read
        // cannot race with another change of the same value.
        let mut changes = Vec::new();
        for (value_id, value) in self.inbox_get(id, &value_ids).await? {
            let rest = inbox::without(&inbox::key(value_id), &value, &by_value[&value_id])?;
            changes.push((
                value_id,
                rest.map(|rest| {
                    let live = inbox::live_count(&rest);
                    (rest, live)
                }),
            ));
        }
        Ok(self.inbox_apply(id, &changes).await?)
    }

    /// Appends events to the inbox of tenant `id` (durable on return); their sequence
    /// numbers.
    pub(crate) async fn inbox_append(
        &self,
        id: &str,
        events: &[InboxEvent],
    ) -> Result<Vec<u64>, StoreError> {
        let values = groups(events);
        let ids = self.inbox_insert(&[(id, values)]).await?;
        let mut sequences = Vec::with_capacity(events.len());
        for (value_id, group) in ids[0]
            .iter()
            .zip(events.chunks(inbox::MAX_EVENTS_PER_VALUE))
        {
            sequences.extend((0..group.len()).map(|index| inbox::sequence(*value_id, index)));
        }
        Ok(sequences)
    }

    /// Stores the events of every tenant in one transaction, then commits every dirty
    /// cached tree: afterwards every earlier write of this process is durable.
    pub(crate) async fn commit_group(
        &self,
        events_by_tenant: Vec<(Arc<str>, Vec<InboxEvent>)>,
    ) -> Result<(), StoreError> {
        let batch: Vec<(&str, Vec<InboxValue>)> = events_by_tenant
            .iter()
            .filter(|(_, events)| !events.is_empty())
            .map(|(tenant, events)| (&**tenant, groups(events)))
            .collect();
        if !batch.is_empty() {
            self.inbox_insert(&batch).await?;
        }
        Ok(self.commit_dirty().await?)
    }

    /// The stored inbox values of tenant `id` as raw entries of its tree (`inbox\0<id>`
    /// keys, as sled stores them), for export.
    pub(crate) async fn inbox_raw_entries(&self, id: &str) -> Result<Vec<Entry>, StoreError> {
        Ok(self
            .inbox_values(id, None, usize::MAX)
            .await?
            .into_iter()
            .map(|(value_id, value)| (inbox::key(value_id), value))
            .collect())
    }

    /// Writes one raw entry of tenant `id`'s tree (import): an inbox value goes to the
    /// inbox under its id, anything else to the tree.
    pub(crate) async fn put_raw(
        &self,
        id: &str,
        tree: &Tree,
        key: &[u8],
        value: &[u8],
    ) -> Result<(), StoreError> {
        match inbox::stored_value_id(key) {
            Some(value_id) => {
                let live = inbox::live_count(value);
                Ok(self
                    .inbox_put(id, value_id, &(value.to_vec(), live))
                    .await?)
            }
            None => tree.insert(key, value),
        }
    }
}
