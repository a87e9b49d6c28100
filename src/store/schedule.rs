//! A tenant's due-queue: invitations and deactivations keyed by due time, so the next
//! one is the first key. Survives restarts; an item leaves when its person is re-planned
//! after the due time.

use chrono::{DateTime, TimeZone, Utc};

use super::tree::Batch;
use super::{StoreError, TenantStore};

const QUEUE_PREFIX: &[u8] = b"due\0";
const INDEX_PREFIX: &str = "duex\0";

/// What is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DueKind {
    /// Send the invitation.
    Invite,
    /// Deactivate (termination date reached).
    Deactivate,
}

impl DueKind {
    fn tag(self) -> u8 {
        match self {
            Self::Invite => b'i',
            Self::Deactivate => b'd',
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            b'i' => Some(Self::Invite),
            b'd' => Some(Self::Deactivate),
            _ => None,
        }
    }
}

/// One due item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueItem {
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    pub kind: DueKind,
    /// Whom.
    pub personio_id: String,
}

fn queue_key(millis: i64, kind: DueKind, personio_id: &str) -> Vec<u8> {
    let mut key = QUEUE_PREFIX.to_vec();
    key.extend_from_slice(&(millis.max(0) as u64).to_be_bytes());
    key.push(kind.tag());
    key.extend_from_slice(personio_id.as_bytes());
    key
}

fn index_key(kind: DueKind, personio_id: &str) -> String {
    format!("{INDEX_PREFIX}{}\0{personio_id}", kind.tag() as char)
}

fn parse_queue_key(key: &[u8]) -> Option<DueItem> {
    let rest = key.strip_prefix(QUEUE_PREFIX)?;
    let millis = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let kind = DueKind::from_tag(*rest.get(8)?)?;
    let personio_id = String::from_utf8(rest.get(9..)?.to_vec()).ok()?;
    let at = Utc
        .timestamp_millis_opt(i64::try_from(millis).ok()?)
        .single()?;
    Some(DueItem {
        at,
        kind,
        personio_id,
    })
}

/// How a scheduled instant is kept in a stored record: RFC 3339 text, written as
/// `to_rfc3339` always wrote it (so stored bytes are unchanged and exports round-trip),
/// read as an instant with any offset. A value that is not a date-time reads as no
/// schedule: the record only mirrors the due-queue, and the next plan of the person
/// stores it again.
pub mod stored_instant {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `at` as RFC 3339 text (`null` for none).
    pub fn serialize<S: Serializer>(
        at: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => serializer.serialize_str(&at.to_rfc3339()),
            None => serializer.serialize_none(),
        }
    }

    /// Reads RFC 3339 text (any offset) as an instant; anything else as none.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        let text = Option::<serde_json::Value>::deserialize(deserializer)?;
        Ok(text
            .as_ref()
            .and_then(serde_json::Value::as_str)
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|at| at.with_timezone(&Utc)))
    }
}

impl TenantStore {
    /// Sets (or with `None` cancels) when `kind` is due for a person, atomically
    /// replacing any earlier plan.
    pub fn set_due(
        &self,
        kind: DueKind,
        personio_id: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let index = index_key(kind, personio_id);
        let mut batch = Batch::default();
        if let Some(old) = self.tree.get(&index)? {
            let millis = i64::from_be_bytes(old.as_slice().try_into().unwrap_or([0; 8]));
            batch.remove(queue_key(millis, kind, personio_id));
        }
        match at {
            Some(at) => {
                let millis = at.timestamp_millis();
                batch.insert(queue_key(millis, kind, personio_id), b"".as_slice());
                batch.insert(index.as_bytes(), millis.to_be_bytes().as_slice());
            }
            None => batch.remove(index.as_bytes()),
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// The earliest due time, if any.
    pub fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        for entry in self.tree.scan_prefix(QUEUE_PREFIX) {
            if let Some(item) = parse_queue_key(&entry?.0) {
                return Ok(Some(item.at));
            }
        }
        Ok(None)
    }

    /// Items due at or before `now`, earliest first.
    pub fn due_until(&self, now: DateTime<Utc>) -> Result<Vec<DueItem>, StoreError> {
        let mut items = Vec::new();
        for entry in self.tree.scan_prefix(QUEUE_PREFIX) {
            let Some(item) = parse_queue_key(&entry?.0) else {
                continue;
            };
            if item.at > now {
                break;
            }
            items.push(item);
        }
        Ok(items)
    }

    /// Every item, earliest first (views, export, tests).
    pub fn all_due(&self) -> Result<Vec<DueItem>, StoreError> {
        self.tree
            .scan_prefix(QUEUE_PREFIX)
            .filter_map(|entry| match entry {
                Ok((key, _)) => parse_queue_key(&key).map(Ok),
                Err(error) => Some(Err(error)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EmployeeRecord;
    use crate::store::conformance::on_every_backend;

    #[test]
    fn stored_schedules_load_as_instants_and_are_written_as_before() {
        let stored = br#"{"learnamp_id":7,"invite_due":"2026-05-01T02:00:00+02:00","deactivate_due":"2026-06-30T22:00:00+00:00"}"#;
        let record: EmployeeRecord = serde_json::from_slice(stored).unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(record.invite_due, Some(at("2026-05-01T00:00:00Z")));
        assert_eq!(record.deactivate_due, Some(at("2026-06-30T22:00:00Z")));
        let written = serde_json::to_value(&record).unwrap();
        assert_eq!(written["invite_due"], "2026-05-01T00:00:00+00:00");
        assert_eq!(written["deactivate_due"], "2026-06-30T22:00:00+00:00");
        let again: EmployeeRecord = serde_json::to_vec(&record)
            .map(|bytes| serde_json::from_slice(&bytes).unwrap())
            .unwrap();
        assert_eq!(again, record);
        for odd in [
            r#"{"invite_due":null}"#,
            r#"{"invite_due":"next tuesday"}"#,
            r#"{"invite_due":17}"#,
            r#"{}"#,
        ] {
            let record: EmployeeRecord = serde_json::from_str(odd).unwrap();
            assert_eq!(record.invite_due, None, "{odd}");
        }
    }

    #[tokio::test]
    async fn replanning_moves_the_item_and_cancelling_removes_it() {
        on_every_backend(
            "replanning_moves_the_item_and_cancelling_removes_it",
            |store| async move {
                let tenant = store.tenant("t").await.unwrap();
                let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
                tenant
                    .set_due(DueKind::Invite, "7", Some(at("2026-05-01T00:00:00Z")))
                    .unwrap();
                tenant
                    .set_due(DueKind::Deactivate, "8", Some(at("2026-04-01T00:00:00Z")))
                    .unwrap();
                assert_eq!(tenant.next_due().unwrap(), Some(at("2026-04-01T00:00:00Z")));
                tenant
                    .set_due(DueKind::Invite, "7", Some(at("2026-03-01T00:00:00Z")))
                    .unwrap();
                assert_eq!(tenant.all_due().unwrap().len(), 2);
                let due = tenant.due_until(at("2026-03-15T00:00:00Z")).unwrap();
                assert_eq!(
                    due,
                    vec![DueItem {
                        at: at("2026-03-01T00:00:00Z"),
                        kind: DueKind::Invite,
                        personio_id: "7".into()
                    }]
                );
                tenant.set_due(DueKind::Invite, "7", None).unwrap();
                tenant.set_due(DueKind::Deactivate, "8", None).unwrap();
                assert_eq!(tenant.next_due().unwrap(), None);
                assert!(tenant.all_due().unwrap().is_empty());
            },
        )
        .await;
    }
}
