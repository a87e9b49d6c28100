//! A tenant's durable webhook inbox: events stored under a crash-safe, increasing
//! sequence number (Personio sends no event id), removed only after their effect is
//! stored.
//!
//! Deliveries that arrive together share one stored value (one sled insert for a
//! whole group commit, see `flusher.rs`): the value under key `inbox\0<id>` holds up to
//! [`MAX_EVENTS_PER_VALUE`] events, and an event's sequence number is `id << 16 | index`.
//! A processed event becomes a tombstone in its value; the value goes once all are.

use serde::{Deserialize, Serialize};

use super::{StoreError, TenantStore, decode, encode};

/// Key prefix of the inbox values in a tenant's tree.
pub(crate) const INBOX_PREFIX: &[u8] = b"inbox\0";

/// Most events one stored value holds (the tenant drains this many per round).
pub const MAX_EVENTS_PER_VALUE: usize = 256;

/// Bits of a sequence number that index an event within its stored value.
const INDEX_BITS: u32 = 16;

/// First byte of a value holding a group of events: then the number of events not yet
/// processed (u16, big-endian), then the JSON array (`null` = processed). A value
/// starting with `{` is a single event as stored by earlier versions.
const GROUP_TAG: u8 = 0xB1;
const HEADER_LEN: usize = 3;

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

/// The key of the stored value `id` (a generated id).
pub(crate) fn key(id: u64) -> Vec<u8> {
    let mut key = INBOX_PREFIX.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// The id of the stored value under an inbox key (0 if malformed).
pub(crate) fn key_id(raw_key: &[u8]) -> u64 {
    raw_key[INBOX_PREFIX.len()..]
        .try_into()
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// The id of a stored inbox value under `raw_key` (from sled's generator), or `None`
/// if the key is not an inbox key.
pub(crate) fn stored_value_id(raw_key: &[u8]) -> Option<u64> {
    let tail = raw_key.strip_prefix(INBOX_PREFIX)?;
    <[u8; 8]>::try_from(tail).ok().map(u64::from_be_bytes)
}

/// The sequence number of the event at `index` in the stored value `id`.
pub(crate) fn sequence(id: u64, index: usize) -> u64 {
    (id << INDEX_BITS) | index as u64
}

/// Sequence numbers by stored value id: the indexes within each value.
pub(crate) fn by_value(sequences: &[u64]) -> std::collections::BTreeMap<u64, Vec<usize>> {
    let mut by_key: std::collections::BTreeMap<u64, Vec<usize>> = Default::default();
    for sequence in sequences {
        by_key
            .entry(sequence >> INDEX_BITS)
            .or_default()
            .push((sequence & ((1 << INDEX_BITS) - 1)) as usize);
    }
    by_key
}

/// Encodes a group; `live` counts the `Some` entries.
pub(crate) fn encode_group<T: Serialize>(events: &[T], live: usize) -> Vec<u8> {
    let count = u16::try_from(live).expect("a group holds at most MAX_EVENTS_PER_VALUE events");
    let mut value = Vec::with_capacity(HEADER_LEN + events.len() * 160);
    value.push(GROUP_TAG);
    value.extend_from_slice(&count.to_be_bytes());
    value.extend_from_slice(&encode(&events));
    value
}

/// The events of a stored value (`None`: processed); `raw_key` names it in errors.
pub(crate) fn decode_group(
    raw_key: &[u8],
    value: &[u8],
) -> Result<Vec<Option<InboxEvent>>, StoreError> {
    match value.first() {
        Some(&GROUP_TAG) if value.len() >= HEADER_LEN => decode(raw_key, &value[HEADER_LEN..]),
        _ => Ok(vec![Some(decode(raw_key, value)?)]),
    }
}

/// Events not yet processed in a stored value, read from its header.
pub(crate) fn live_count(value: &[u8]) -> usize {
    match value {
        [GROUP_TAG, high, low, ..] => usize::from(u16::from_be_bytes([*high, *low])),
        _ => 1,
    }
}

/// Pending events of stored values `(id, value)` given in id order: whole values until
/// at least `limit` events not held back by `skip` are read.
pub(crate) fn pending_from(
    values: impl Iterator<Item = Result<(u64, Vec<u8>), StoreError>>,
    limit: usize,
    skip: &(dyn Fn(&InboxEvent) -> bool + Sync),
) -> Result<Vec<(u64, InboxEvent)>, StoreError> {
    let mut pending = Vec::new();
    for entry in values {
        if pending.len() >= limit {
            break;
        }
        let (id, value) = entry?;
        let group = decode_group(&key(id), &value)?;
        pending.extend(group.into_iter().enumerate().filter_map(|(index, event)| {
            let event = event?;
            (!skip(&event)).then(|| (sequence(id, index), event))
        }));
    }
    Ok(pending)
}

/// A stored value with the events at `indexes` processed: `None` once none is left.
pub(crate) fn without(
    raw_key: &[u8],
    value: &[u8],
    indexes: &[usize],
) -> Result<Option<Vec<u8>>, StoreError> {
    let mut group = decode_group(raw_key, value)?;
    for &index in indexes {
        if let Some(slot) = group.get_mut(index) {
            *slot = None;
        }
    }
    let live = group.iter().filter(|event| event.is_some()).count();
    Ok((live > 0).then(|| encode_group(&group, live)))
}

impl TenantStore {
    /// Appends events, oldest first, in as few stored values as
    /// [`MAX_EVENTS_PER_VALUE`] allows (not yet durable: call `Store::flush` before
    /// acknowledging). Returns the sequence number of each event.
    pub async fn append_events(&self, events: &[InboxEvent]) -> Result<Vec<u64>, StoreError> {
        self.backend.inbox_append(&self.id, events).await
    }

    /// Appends one event (not yet durable: call `Store::flush` before acknowledging).
    pub async fn push_event(&self, event: &InboxEvent) -> Result<u64, StoreError> {
        let sequences = self.append_events(std::slice::from_ref(event)).await?;
        Ok(sequences[0])
    }

    /// Pending events, oldest first: whole stored values until at least `limit` events
    /// are read (or all, if fewer are pending).
    pub async fn pending_events(&self, limit: usize) -> Result<Vec<(u64, InboxEvent)>, StoreError> {
        self.backend
            .inbox_pending(&self.id, limit, &|_| false)
            .await
    }

    /// Like [`Self::pending_events`], leaving out the events `skip` holds back (they
    /// do not count towards `limit`): a parked person's events stay stored without
    /// hiding the events stored after them.
    pub async fn pending_events_except(
        &self,
        limit: usize,
        skip: impl Fn(&InboxEvent) -> bool + Sync,
    ) -> Result<Vec<(u64, InboxEvent)>, StoreError> {
        self.backend.inbox_pending(&self.id, limit, &skip).await
    }

    /// Number of pending events (read from the values' headers, not decoded).
    pub async fn pending_count(&self) -> usize {
        self.backend.inbox_count(&self.id).await.unwrap_or(0)
    }

    /// Removes processed events, atomically: a value whose events are all processed
    /// goes, the others keep their unprocessed events under the same sequence numbers.
    pub async fn remove_events(&self, sequences: &[u64]) -> Result<(), StoreError> {
        self.backend.inbox_remove(&self.id, sequences).await
    }
}

/// A `person.updated` event about `person` (store tests).
#[cfg(test)]
pub(super) fn test_event(person: &str) -> InboxEvent {
    InboxEvent {
        received_at: "now".into(),
        event_name: "person.updated".into(),
        occurred_at: "then".into(),
        person_id: Some(person.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::test_event as event;
    use super::*;
    use crate::store::conformance::on_every_backend;

    #[tokio::test]
    async fn events_come_back_in_order_and_leave_when_removed() {
        on_every_backend(
            "events_come_back_in_order_and_leave_when_removed",
            |store| async move {
                let tenant = store.tenant("t").await.unwrap();
                let first = tenant.push_event(&event("1")).await.unwrap();
                let second = tenant.push_event(&event("2")).await.unwrap();
                assert!(second > first);
                let pending = tenant.pending_events(10).await.unwrap();
                assert_eq!(pending.len(), 2);
                assert_eq!(pending[0].1.person_id.as_deref(), Some("1"));
                tenant.remove_events(&[first]).await.unwrap();
                assert_eq!(tenant.pending_count().await, 1);
                assert_eq!(tenant.pending_events(10).await.unwrap()[0].0, second);
            },
        )
        .await;
    }

    #[tokio::test]
    async fn a_group_keeps_order_and_loses_events_one_by_one() {
        on_every_backend(
            "a_group_keeps_order_and_loses_events_one_by_one",
            |store| async move {
                let tenant = store.tenant("t").await.unwrap();
                let before = tenant.push_event(&event("0")).await.unwrap();
                let events: Vec<InboxEvent> = (1..=600).map(|n| event(&n.to_string())).collect();
                let sequences = tenant.append_events(&events).await.unwrap();
                assert_eq!(sequences.len(), 600);
                assert!(sequences.windows(2).all(|pair| pair[0] < pair[1]));
                assert!(before < sequences[0]);
                assert_eq!(tenant.pending_count().await, 601);
                let people = |pending: &[(u64, InboxEvent)]| -> Vec<String> {
                    pending
                        .iter()
                        .map(|(_, event)| event.person_id.clone().unwrap())
                        .collect()
                };
                // Whole values: the single event, then the first group of 256.
                let first = tenant.pending_events(2).await.unwrap();
                assert_eq!(first.len(), 257);
                assert_eq!(people(&first)[..3], ["0", "1", "2"]);
                // Remove every other event of the first group: the rest keep their numbers.
                let odd: Vec<u64> = first.iter().skip(1).step_by(2).map(|(s, _)| *s).collect();
                tenant.remove_events(&odd).await.unwrap();
                tenant.remove_events(&[before]).await.unwrap();
                assert_eq!(tenant.pending_count().await, 601 - 1 - 128);
                let left = tenant.pending_events(1).await.unwrap();
                assert_eq!(left.len(), 128);
                assert_eq!(left[0], first[2]);
                let left_ids: Vec<u64> = left.iter().map(|(s, _)| *s).collect();
                tenant.remove_events(&left_ids).await.unwrap();
                // Removing twice is harmless.
                tenant.remove_events(&left_ids).await.unwrap();
                let rest = tenant.pending_events(usize::MAX).await.unwrap();
                assert_eq!(rest.len(), 600 - 256);
                assert_eq!(people(&rest)[0], "257");
                assert_eq!(tenant.pending_count().await, 600 - 256);
            },
        )
        .await;
    }

    #[tokio::test]
    async fn held_back_events_do_not_hide_later_ones() {
        on_every_backend(
            "held_back_events_do_not_hide_later_ones",
            |store| async move {
                let tenant = store.tenant("t").await.unwrap();
                let stuck: Vec<InboxEvent> = (0..300).map(|_| event("stuck")).collect();
                tenant.append_events(&stuck).await.unwrap();
                tenant.push_event(&event("free")).await.unwrap();
                let held = |event: &InboxEvent| event.person_id.as_deref() == Some("stuck");
                let pending = tenant.pending_events_except(10, held).await.unwrap();
                assert_eq!(pending.len(), 1);
                assert_eq!(pending[0].1.person_id.as_deref(), Some("free"));
                assert_eq!(tenant.pending_count().await, 301, "nothing removed");
            },
        )
        .await;
    }

    #[tokio::test]
    async fn single_events_of_earlier_versions_are_read() {
        on_every_backend(
            "single_events_of_earlier_versions_are_read",
            |store| async move {
                let tenant = store.tenant("t").await.unwrap();
                tenant.put_raw(&key(7), &encode(&event("9"))).await.unwrap();
                assert_eq!(tenant.pending_count().await, 1);
                let pending = tenant.pending_events(10).await.unwrap();
                assert_eq!(pending, vec![(sequence(7, 0), event("9"))]);
                tenant.remove_events(&[pending[0].0]).await.unwrap();
                assert_eq!(tenant.pending_count().await, 0);
            },
        )
        .await;
    }
}
