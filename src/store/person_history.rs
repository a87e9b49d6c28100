//! Each person's history: every write to Learn Amp made for them (create, adopt,
//! update, reactivate, deactivate, invite, avatar), with its time, its source and the
//! fields before → after. Kept beside the tenant's records, bounded to the newest
//! [`PERSON_HISTORY_CAP`] entries per person, and written without a flush of its own:
//! it rides on the record writes' flush discipline (a crash may lose the newest
//! entries together with the writes they describe being recorded).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{StoreError, TenantStore, decode, encode};

/// Entries kept per person; older ones are removed as new ones arrive.
pub const PERSON_HISTORY_CAP: usize = 100;

const PERSON_HISTORY_PREFIX: &str = "phist\0";

/// What caused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    /// A full sync (initial, reconciliation, on demand).
    FullSync,
    /// A Personio webhook naming the person.
    Webhook,
    /// The tenant's scheduler (an invitation or deactivation day).
    Scheduler,
    /// An operator through the admin API (e.g. a manual invitation).
    Administrator,
}

/// One field's values around a write (`None`: unknown or absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldChange {
    /// The value before (`null` when unknown, e.g. a new user or an adopted one).
    pub before: Option<String>,
    /// The value written (`""` clears).
    pub after: Option<String>,
}

/// One write (or the writes of one step) to Learn Amp for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PersonChange {
    /// RFC 3339.
    pub at: String,
    /// What caused it.
    pub source: ChangeSource,
    /// What was done, in order: `create`, `adopt`, `update`, `reactivate`, `avatar`,
    /// `invite`, `deactivate`.
    pub actions: Vec<String>,
    /// Learn Amp fields written, before → after.
    pub fields: BTreeMap<String, FieldChange>,
}

fn person_prefix(personio_id: &str) -> Vec<u8> {
    let mut prefix = PERSON_HISTORY_PREFIX.as_bytes().to_vec();
    prefix.extend_from_slice(personio_id.as_bytes());
    prefix.push(0);
    prefix
}

impl TenantStore {
    /// Appends `change` to the history of `personio_id`, keeping the newest
    /// [`PERSON_HISTORY_CAP`]. No flush: see the module's note.
    pub fn append_person_change(
        &self,
        personio_id: &str,
        change: &PersonChange,
    ) -> Result<(), StoreError> {
        let prefix = person_prefix(personio_id);
        let value = encode(change);
        let seq_of = |key: &[u8]| {
            <[u8; 8]>::try_from(&key[prefix.len()..])
                .ok()
                .map(u64::from_be_bytes)
        };
        loop {
            // Sequence numbers per person follow the newest stored key (so the order
            // survives an export and import) and stay contiguous (only the oldest are
            // removed): the first and last keys give the count without a scan.
            let mut keys = self
                .tree
                .scan_prefix(&prefix)
                .map(|entry| entry.map(|(key, _)| key));
            let first = keys.next().transpose()?.and_then(|key| seq_of(&key));
            let last = keys.next_back().transpose()?.and_then(|key| seq_of(&key));
            drop(keys);
            let next = last.or(first).map_or(0, |seq| seq + 1);
            let mut key = prefix.clone();
            key.extend_from_slice(&next.to_be_bytes());
            let stored = self
                .tree
                .compare_and_swap(&key, None, Some(value.clone()))?;
            if !stored {
                // Another write for this person took the number: look again.
                continue;
            }
            let oldest = first.unwrap_or(next);
            let kept = next - oldest + 1;
            let excess = kept.saturating_sub(PERSON_HISTORY_CAP as u64);
            for seq in oldest..oldest + excess {
                let mut old = prefix.clone();
                old.extend_from_slice(&seq.to_be_bytes());
                self.tree.remove(old)?;
            }
            return Ok(());
        }
    }

    /// The history of `personio_id`, newest first.
    pub fn person_history(&self, personio_id: &str) -> Result<Vec<PersonChange>, StoreError> {
        self.tree
            .scan_prefix(person_prefix(personio_id))
            .rev()
            .map(|entry| {
                let (key, value) = entry?;
                decode(&key, &value)
            })
            .collect()
    }

    /// The newest entry of `personio_id`'s history.
    pub fn last_person_change(
        &self,
        personio_id: &str,
    ) -> Result<Option<PersonChange>, StoreError> {
        self.tree
            .scan_prefix(person_prefix(personio_id))
            .next_back()
            .map(|entry| {
                let (key, value) = entry?;
                decode(&key, &value)
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::on_every_backend;

    fn change(n: usize) -> PersonChange {
        PersonChange {
            at: format!("2026-12-07T00:00:{:02}+00:00", n % 60),
            source: ChangeSource::Webhook,
            actions: vec!["update".into()],
            fields: BTreeMap::from([(
                "jobTitle".into(),
                FieldChange {
                    before: Some(format!("t{n}")),
                    after: Some(format!("t{}", n + 1)),
                },
            )]),
        }
    }

    #[tokio::test]
    async fn keeps_the_newest_hundred_entries_newest_first() {
        on_every_backend(
            "keeps_the_newest_hundred_entries_newest_first",
            |store| async move {
                let store = store.tenant("t").await.unwrap();
                for n in 0..(PERSON_HISTORY_CAP + 30) {
                    store.append_person_change("7", &change(n)).unwrap();
                }
                store.append_person_change("70", &change(999)).unwrap();
                let history = store.person_history("7").unwrap();
                assert_eq!(history.len(), PERSON_HISTORY_CAP);
                assert_eq!(history[0], change(PERSON_HISTORY_CAP + 29));
                assert_eq!(history[PERSON_HISTORY_CAP - 1], change(30));
                // Another person's entries (whose id starts alike) are apart.
                assert_eq!(store.person_history("70").unwrap(), vec![change(999)]);
                assert_eq!(
                    store.last_person_change("7").unwrap(),
                    Some(change(PERSON_HISTORY_CAP + 29))
                );
                assert!(store.person_history("8").unwrap().is_empty());
                assert_eq!(store.last_person_change("8").unwrap(), None);
            },
        )
        .await;
    }
}
