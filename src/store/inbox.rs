//! A tenant's durable webhook inbox: events stored under a crash-safe, increasing
//! sequence number (Personio sends no event id), removed only after their effect is
//! stored.

use serde::{Deserialize, Serialize};

use super::{StoreError, TenantStore, decode, encode};

const INBOX_PREFIX: &[u8] = b"inbox\0";

/// One stored webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEvent {
    /// RFC 3339 time the front door stored it.
    pub received_at: String,
    /// `event_name`.
    pub event_name: String,
    /// `occurred_at` as sent.
    pub occurred_at: String,
    /// The person the event is about; `None` triggers a full reconciliation.
    pub person_id: Option<String>,
}

fn key(sequence: u64) -> Vec<u8> {
    let mut key = INBOX_PREFIX.to_vec();
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

impl TenantStore {
    /// Appends an event (not yet durable: call `Store::flush` before acknowledging).
    pub fn push_event(&self, event: &InboxEvent) -> Result<u64, StoreError> {
        let sequence = self.db.generate_id()?;
        self.tree.insert(key(sequence), encode(event))?;
        Ok(sequence)
    }

    /// Up to `limit` pending events, oldest first.
    pub fn pending_events(&self, limit: usize) -> Result<Vec<(u64, InboxEvent)>, StoreError> {
        self.tree
            .scan_prefix(INBOX_PREFIX)
            .take(limit)
            .map(|entry| {
                let (raw_key, value) = entry?;
                let sequence = raw_key[INBOX_PREFIX.len()..]
                    .try_into()
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Ok((sequence, decode(&raw_key, &value)?))
            })
            .collect()
    }

    /// Number of pending events.
    pub fn pending_count(&self) -> usize {
        self.tree.scan_prefix(INBOX_PREFIX).count()
    }

    /// Removes processed events, atomically.
    pub fn remove_events(&self, sequences: &[u64]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for sequence in sequences {
            batch.remove(key(*sequence));
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn events_come_back_in_order_and_leave_when_removed() {
        let store = Store::temporary().unwrap();
        let tenant = store.tenant("t").unwrap();
        let event = |person: &str| InboxEvent {
            received_at: "now".into(),
            event_name: "person.updated".into(),
            occurred_at: "then".into(),
            person_id: Some(person.into()),
        };
        let first = tenant.push_event(&event("1")).unwrap();
        let second = tenant.push_event(&event("2")).unwrap();
        assert!(second > first);
        let pending = tenant.pending_events(10).unwrap();
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].1.person_id.as_deref(), Some("1"));
        tenant.remove_events(&[first]).unwrap();
        assert_eq!(tenant.pending_count(), 1);
        assert_eq!(tenant.pending_events(10).unwrap()[0].0, second);
    }
}
