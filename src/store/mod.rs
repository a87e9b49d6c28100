//! The only module that talks to storage: a `meta` registry (tenant specs,
//! invitations, run marks) and one tree per tenant for its mapping, applied records,
//! teams, sync report, history and inbox, written over the primitives of a
//! [`backend::Backend`] (sled).

mod backend;
mod cluster;
pub(crate) use cluster::InboxSignal;
#[cfg(test)]
pub(crate) mod conformance;
pub mod crypto;
mod flusher;
pub mod inbox;
mod invitations;
mod person_history;
mod raw;
mod run;
pub mod schedule;
mod sessions;
mod tree;

use std::path::Path;
use std::sync::Arc;

pub use backend::postgres::testing as postgres_testing;
pub use backend::postgres::{Fence, PgError, PgOptions};
use backend::{Backend, SledBackend};
use crypto::{CryptoError, KeySource, SecretBox, SecretKey};
use flusher::GroupFlusher;
pub use invitations::InvitationRecord;
pub use person_history::{ChangeSource, FieldChange, PERSON_HISTORY_CAP, PersonChange};
pub use run::PreviousRun;
pub use sessions::SessionRecord;
use tree::Tree;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::domain::Employee;
use crate::domain::fields::UserFields;
use crate::domain::report::SyncReport;
use crate::domain::tenant::TenantSpec;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed (I/O, corruption).
    #[error("storage failed: {0}")]
    Sled(#[from] sled::Error),
    /// A storage backend other than sled failed (connection, query); the message
    /// names no secret.
    #[error("storage failed: {0}")]
    Backend(String),
    /// A write refused because this node no longer holds the lease of the tenant
    /// (another node owns it now); nothing of the write was stored.
    #[error("tenant {tenant} is owned by another node now; the write was refused")]
    Fenced {
        /// The tenant id.
        tenant: String,
    },
    /// Making writes durable failed.
    #[error("storage flush failed")]
    FlushFailed,
    /// The secret key is missing, malformed or wrong, or a sealed secret does not open.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A stored value could not be decoded.
    #[error("stored value under {key} is unreadable: {message}")]
    Decode {
        /// The key, printable.
        key: String,
        /// The decoder's message.
        message: String,
    },
}

/// What the service knows about one Personio employee it has linked to Learn Amp.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmployeeRecord {
    /// The Learn Amp user id (the mapping that exists only here).
    pub learnamp_id: u64,
    /// The Learn Amp fields last written (or found equal) for this person.
    pub applied: UserFields,
    /// The Personio record those fields came from.
    pub employee: Option<Employee>,
    /// Whether the Learn Amp user is deactivated (by us or found so).
    pub deactivated: bool,
    /// An invitation was confirmed sent (never send another).
    pub invited: bool,
    /// An invitation call was started; if `invited` is still false after a crash the
    /// user's Learn Amp status decides whether it went out.
    pub invite_started: bool,
    /// sha256 of the last avatar uploaded (`Some("")` = none uploaded, Personio has none).
    pub avatar_sha256: Option<String>,
    /// When the invitation is scheduled, mirrored in the due-queue.
    #[serde(with = "schedule::stored_instant")]
    pub invite_due: Option<DateTime<Utc>>,
    /// When the deactivation is scheduled, mirrored in the due-queue.
    #[serde(with = "schedule::stored_instant")]
    pub deactivate_due: Option<DateTime<Utc>>,
}

impl EmployeeRecord {
    /// Whether the record links a Learn Amp user (`learnamp_id` 0: not created yet, e.g.
    /// an invitation intent written before the create, or a creation waiting for its
    /// invitation day).
    pub fn is_linked(&self) -> bool {
        self.learnamp_id != 0
    }
}

/// A Learn Amp team the service manages for a Personio unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRecord {
    /// The Learn Amp team id.
    pub learnamp_id: u64,
    /// The name last written.
    pub name: String,
}

/// The process-wide store.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
    flusher: Arc<GroupFlusher>,
    secrets: Arc<SecretBox>,
}

const TENANT_PREFIX: &str = "tenant\0";
/// `meta` key of a value sealed under the store's key, to detect a wrong key at open.
const KEY_CHECK_KEY: &str = "secret_key_check";

impl Store {
    /// Opens (or creates) the database under `dir` with a page cache of `cache_mb` MiB;
    /// secrets are encrypted under `<dir>/secret.key` (created for a new database).
    pub async fn open(dir: &Path, cache_mb: u64) -> Result<Self, StoreError> {
        Self::open_with(dir, cache_mb, KeySource::DataDir).await
    }

    /// Like [`Store::open`], with secrets encrypted under `key`.
    pub async fn open_with_key(
        dir: &Path,
        cache_mb: u64,
        key: SecretKey,
    ) -> Result<Self, StoreError> {
        Self::open_with(dir, cache_mb, KeySource::Given(key)).await
    }

    /// Opens the database under `dir` with the key from `source`. A key that does not
    /// match the stored secrets is [`CryptoError::WrongKey`]; secrets stored in clear by
    /// an older version are encrypted on the way.
    pub async fn open_with(
        dir: &Path,
        cache_mb: u64,
        source: KeySource,
    ) -> Result<Self, StoreError> {
        let backend = Backend::Sled(SledBackend::open(dir, cache_mb)?);
        let fresh = backend.meta_get(KEY_CHECK_KEY.as_bytes()).await?.is_none();
        let key = source.into_key(dir, fresh)?;
        Self::from_backend(backend, &key).await
    }

    /// Opens the PostgreSQL database of `options` (migrating its schema to this
    /// binary's) with the key from `source`; [`KeySource::DataDir`] keeps the key in
    /// `<key_dir>/secret.key`.
    pub async fn open_postgres(
        options: &PgOptions,
        key_dir: &Path,
        source: KeySource,
    ) -> Result<Self, StoreError> {
        let backend = Backend::Postgres(backend::PgBackend::connect(options).await?);
        let fresh = backend.meta_get(KEY_CHECK_KEY.as_bytes()).await?.is_none();
        let key = source.into_key(key_dir, fresh)?;
        Self::from_backend(backend, &key).await
    }

    /// A 32-byte key for `purpose` (e.g. signing what a page hands the browser),
    /// derived from the store's secret key: the same on every node of one database
    /// (they share the secret key) and after a restart, never stored, never shown.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        self.secrets.derive_key(purpose)
    }

    /// A throw-away store with a random in-memory key (tests, demo).
    pub async fn temporary() -> Result<Self, StoreError> {
        Self::from_backend(
            Backend::Sled(SledBackend::temporary()?),
            &SecretKey::generate(),
        )
        .await
    }

    async fn from_backend(backend: Backend, key: &SecretKey) -> Result<Self, StoreError> {
        let backend = Arc::new(backend);
        let flusher = Arc::new(GroupFlusher::new(backend.clone()));
        let secrets = Arc::new(SecretBox::new(key));
        match backend.meta_get(KEY_CHECK_KEY.as_bytes()).await? {
            Some(check) => secrets.verify_key_check(&check)?,
            None => {
                backend
                    .meta_insert(KEY_CHECK_KEY.as_bytes(), secrets.key_check()?.into_bytes())
                    .await?;
            }
        }
        let store = Self {
            backend,
            flusher,
            secrets,
        };
        store.seal_clear_secrets().await?;
        Ok(store)
    }

    /// Encrypts secrets an older version stored in clear, and makes that durable.
    async fn seal_clear_secrets(&self) -> Result<(), StoreError> {
        let mut sealed_any = false;
        for (key, value) in self
            .backend
            .meta_scan_prefix(TENANT_PREFIX.as_bytes())
            .await?
        {
            let mut json: serde_json::Value = decode(&key, &value)?;
            if self.secrets.open_spec(&mut json)? {
                self.secrets.seal_spec(&mut json)?;
                self.backend.meta_insert(&key, encode(&json)).await?;
                sealed_any = true;
            }
        }
        if sealed_any {
            tracing::info!("secrets stored in clear by an older version are now encrypted");
        }
        self.backend.commit_group(Vec::new()).await
    }

    /// A spec as stored: JSON with every secret sealed.
    fn seal_spec(&self, spec: &TenantSpec) -> Result<Vec<u8>, StoreError> {
        let mut json = serde_json::to_value(spec).expect("tenant specs serialise to JSON");
        self.secrets.seal_spec(&mut json)?;
        Ok(encode(&json))
    }

    /// A stored spec, secrets opened.
    fn open_spec(&self, key: &[u8], value: &[u8]) -> Result<TenantSpec, StoreError> {
        let mut json: serde_json::Value = decode(key, value)?;
        self.secrets.open_spec(&mut json)?;
        serde_json::from_value(json).map_err(|error| StoreError::Decode {
            key: String::from_utf8_lossy(key).replace('\0', "/"),
            message: error.to_string(),
        })
    }

    /// Every stored tenant spec.
    pub async fn tenant_specs(&self) -> Result<Vec<TenantSpec>, StoreError> {
        self.backend
            .meta_scan_prefix(TENANT_PREFIX.as_bytes())
            .await?
            .iter()
            .map(|(key, value)| self.open_spec(key, value))
            .collect()
    }

    /// One stored tenant spec.
    pub async fn tenant_spec(&self, id: &str) -> Result<Option<TenantSpec>, StoreError> {
        let key = format!("{TENANT_PREFIX}{id}");
        self.backend
            .meta_get(key.as_bytes())
            .await?
            .map(|value| self.open_spec(key.as_bytes(), &value))
            .transpose()
    }

    /// Stores a tenant spec (secrets encrypted) and makes it durable.
    pub async fn put_tenant_spec(&self, spec: &TenantSpec) -> Result<(), StoreError> {
        let key = format!("{TENANT_PREFIX}{}", spec.id);
        self.backend
            .meta_insert(key.as_bytes(), self.seal_spec(spec)?)
            .await?;
        self.flush().await
    }

    /// Stores a tenant spec only if no tenant has that id; `false` if one exists.
    pub async fn insert_new_tenant_spec(&self, spec: &TenantSpec) -> Result<bool, StoreError> {
        let key = format!("{TENANT_PREFIX}{}", spec.id);
        let inserted = self
            .backend
            .meta_compare_and_swap(key.as_bytes(), None, Some(self.seal_spec(spec)?))
            .await?;
        if inserted {
            self.flusher.undelete(&spec.id).await;
            self.flush().await?;
        }
        Ok(inserted)
    }

    /// Changes the stored spec of `id` atomically: `change` sees the spec as stored now
    /// and is called again if another writer changed it meanwhile; what it returns is
    /// the answer. `None` when no tenant `id` exists. Durable on return.
    pub async fn update_tenant_spec<T>(
        &self,
        id: &str,
        mut change: impl FnMut(&mut TenantSpec) -> T,
    ) -> Result<Option<T>, StoreError> {
        let key = format!("{TENANT_PREFIX}{id}");
        loop {
            let Some(current) = self.backend.meta_get(key.as_bytes()).await? else {
                return Ok(None);
            };
            let mut spec = self.open_spec(key.as_bytes(), &current)?;
            let answer = change(&mut spec);
            let sealed = self.seal_spec(&spec)?;
            if self
                .backend
                .meta_compare_and_swap(key.as_bytes(), Some(&current), Some(sealed))
                .await?
            {
                self.flush().await?;
                return Ok(Some(answer));
            }
        }
    }

    /// Removes a tenant's spec; with `purge`, its data too.
    /// Webhook events of `id` stored later are dropped (see [`Store::has_tenant_data`]
    /// for a tenant created over kept data).
    pub async fn remove_tenant(&self, id: &str, purge: bool) -> Result<(), StoreError> {
        {
            // No event write runs while the tenant goes.
            let _deleting = self.flusher.deleting(id).await;
            self.backend
                .meta_remove(format!("{TENANT_PREFIX}{id}").as_bytes())
                .await?;
            self.remove_invitations_of(id).await?;
            if purge {
                self.backend.drop_tenant_data(id).await?;
            }
        }
        self.flush().await
    }

    /// Whether a tenant tree of `id` exists (data kept by a delete without purge).
    pub async fn has_tenant_data(&self, id: &str) -> bool {
        self.backend.has_tenant_data(id).await.unwrap_or(false)
    }

    /// The store of one tenant.
    pub async fn tenant(&self, id: &str) -> Result<TenantStore, StoreError> {
        Ok(TenantStore {
            tree: self.backend.open_tenant(id).await?,
            id: Arc::from(id),
            backend: self.backend.clone(),
        })
    }

    /// Makes every write so far durable. Concurrent callers share flushes (group
    /// commit): one fsync covers every write made before it started.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.flusher.flush().await
    }

    /// Stores a webhook event in the inbox of `tenant_id` and returns once it is
    /// durable. Events of concurrent callers are stored together (one value per tenant
    /// per flush) and share the flush.
    pub async fn append_event(
        &self,
        tenant_id: Arc<str>,
        event: inbox::InboxEvent,
    ) -> Result<(), StoreError> {
        self.flusher.append_event(tenant_id, event).await
    }

    /// Whether the most recent group commit failed to make its writes durable (until
    /// one succeeds again).
    pub fn flush_failing(&self) -> bool {
        self.flusher.failing()
    }

    /// Flushes of the group committer so far (one per group of concurrent callers).
    pub fn group_flushes(&self) -> u64 {
        self.flusher.flushes()
    }
}

/// One tenant's tree.
#[derive(Clone)]
pub struct TenantStore {
    tree: Tree,
    id: Arc<str>,
    backend: Arc<Backend>,
}

const EMPLOYEE_PREFIX: &str = "emp\0";
const TEAM_PREFIX: &str = "team\0";
const LAST_SYNC_KEY: &str = "state\0last_sync";
const INITIAL_DONE_KEY: &str = "state\0initial_sync_done";
const SETTINGS_APPLIED_KEY: &str = "state\0settings_applied";
const HISTORY_PREFIX: &str = "hist\0";
const UNSUPPORTED_KEY: &str = "state\0learnamp_unsupported";
const VERIFIED_KEY: &str = "state\0learnamp_verified";

impl TenantStore {
    /// The record of one Personio employee.
    pub fn employee(&self, personio_id: &str) -> Result<Option<EmployeeRecord>, StoreError> {
        self.get(&format!("{EMPLOYEE_PREFIX}{personio_id}"))
    }

    /// Every employee record, by Personio id.
    pub fn employees(&self) -> Result<Vec<(String, EmployeeRecord)>, StoreError> {
        self.scan(EMPLOYEE_PREFIX)
    }

    /// Employee records by Personio id in key order, starting after `after` (a paging
    /// cursor: the last id of the previous page), read lazily.
    pub fn employees_after(
        &self,
        after: Option<&str>,
    ) -> impl Iterator<Item = Result<(String, EmployeeRecord), StoreError>> + use<> {
        let start = match after {
            Some(id) => std::ops::Bound::Excluded(format!("{EMPLOYEE_PREFIX}{id}").into_bytes()),
            None => std::ops::Bound::Included(EMPLOYEE_PREFIX.as_bytes().to_vec()),
        };
        self.tree
            .range(start)
            .take_while(|entry| {
                entry
                    .as_ref()
                    .map_or(true, |(key, _)| key.starts_with(EMPLOYEE_PREFIX.as_bytes()))
            })
            .map(|entry| {
                let (key, value) = entry?;
                let id = String::from_utf8_lossy(&key[EMPLOYEE_PREFIX.len()..]).into_owned();
                Ok((id, decode(&key, &value)?))
            })
    }

    /// Stores the record of one Personio employee.
    pub fn put_employee(
        &self,
        personio_id: &str,
        record: &EmployeeRecord,
    ) -> Result<(), StoreError> {
        self.put(&format!("{EMPLOYEE_PREFIX}{personio_id}"), record)
    }

    /// The team managed for a Personio unit id.
    pub fn team(&self, unit_id: &str) -> Result<Option<TeamRecord>, StoreError> {
        self.get(&format!("{TEAM_PREFIX}{unit_id}"))
    }

    /// Every managed team, by Personio unit id.
    pub fn teams(&self) -> Result<Vec<(String, TeamRecord)>, StoreError> {
        self.scan(TEAM_PREFIX)
    }

    /// Stores the team managed for a Personio unit id.
    pub fn put_team(&self, unit_id: &str, record: &TeamRecord) -> Result<(), StoreError> {
        self.put(&format!("{TEAM_PREFIX}{unit_id}"), record)
    }

    /// Makes this tenant's writes durable (on sled the whole database is flushed).
    /// On PostgreSQL a handle whose tree is no longer the tenant's shared cache (its
    /// lease was lost and the tree retired, or a read-only snapshot written to) is
    /// [`StoreError::Fenced`]: its writes are not stored, and the caller must not act
    /// as if they were.
    pub async fn flush(&self) -> Result<(), StoreError> {
        if let Tree::Cached(tree) = &self.tree
            && let Some(backend) = self.backend.postgres()
        {
            let shared = backend
                .cached(&self.id)
                .is_some_and(|cached| Arc::ptr_eq(&cached, tree));
            if tree.is_retired() || (tree.is_dirty() && !shared) {
                crate::metrics::fenced_write(crate::metrics::FencedBy::Node);
                return Err(StoreError::Fenced {
                    tenant: self.id.to_string(),
                });
            }
        }
        self.backend.flush_tenant(&self.id).await
    }

    /// Forgets the team managed for a Personio unit id.
    pub fn remove_team(&self, unit_id: &str) -> Result<(), StoreError> {
        self.tree.remove(format!("{TEAM_PREFIX}{unit_id}"))?;
        Ok(())
    }

    /// The last full sync report.
    pub fn last_sync(&self) -> Result<Option<SyncReport>, StoreError> {
        self.get(LAST_SYNC_KEY)
    }

    /// Stores the last full sync report.
    pub fn put_last_sync(&self, report: &SyncReport) -> Result<(), StoreError> {
        self.put(LAST_SYNC_KEY, report)
    }

    /// Whether the initial sync has completed once.
    pub fn initial_sync_done(&self) -> Result<bool, StoreError> {
        self.tree.contains_key(INITIAL_DONE_KEY)
    }

    /// Marks the initial sync complete.
    pub fn mark_initial_sync_done(&self) -> Result<(), StoreError> {
        self.tree.insert(INITIAL_DONE_KEY, b"1".as_slice())?;
        Ok(())
    }

    /// The settings (as JSON) of the last successful full sync.
    pub fn settings_applied(&self) -> Result<Option<serde_json::Value>, StoreError> {
        self.get(SETTINGS_APPLIED_KEY)
    }

    /// Records the settings of a successful full sync.
    pub fn put_settings_applied(&self, settings: &serde_json::Value) -> Result<(), StoreError> {
        self.put(SETTINGS_APPLIED_KEY, settings)
    }

    /// The assumed Learn Amp contracts found missing, by name, with the RFC 3339 time
    /// they were last found so.
    pub fn learnamp_unsupported(
        &self,
    ) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        Ok(self.get(UNSUPPORTED_KEY)?.unwrap_or_default())
    }

    /// Records that the assumed contract `name` is missing as of `at` (RFC 3339).
    /// Returns whether it was not recorded before (atomically: concurrent callers see
    /// `true` once).
    pub fn mark_learnamp_unsupported(&self, name: &str, at: &str) -> Result<bool, StoreError> {
        self.update_map(UNSUPPORTED_KEY, |map| {
            map.insert(name.to_string(), at.to_string()).is_none()
        })
    }

    /// Forgets that the assumed contract `name` was missing; returns whether it was.
    pub fn clear_learnamp_unsupported(&self, name: &str) -> Result<bool, StoreError> {
        self.update_map(UNSUPPORTED_KEY, |map| map.remove(name).is_some())
    }

    /// When a probe last found the assumed contract `name` present (RFC 3339).
    pub fn learnamp_verified(&self, name: &str) -> Result<Option<String>, StoreError> {
        let map: std::collections::BTreeMap<String, String> =
            self.get(VERIFIED_KEY)?.unwrap_or_default();
        Ok(map.get(name).cloned())
    }

    /// Records that a probe found the assumed contract `name` present at `at`.
    pub fn mark_learnamp_verified(&self, name: &str, at: &str) -> Result<(), StoreError> {
        self.update_map(VERIFIED_KEY, |map| {
            map.insert(name.to_string(), at.to_string());
            true
        })
        .map(drop)
    }

    /// Applies `change` to the string map stored under `key` atomically; returns what
    /// `change` returned on the attempt that was stored.
    fn update_map(
        &self,
        key: &str,
        change: impl Fn(&mut std::collections::BTreeMap<String, String>) -> bool,
    ) -> Result<bool, StoreError> {
        let mut outcome = false;
        let mut decode_error = None;
        self.tree.update_and_fetch(key, |old| {
            let mut map: std::collections::BTreeMap<String, String> = match old {
                Some(bytes) => match decode(key.as_bytes(), bytes) {
                    Ok(map) => map,
                    Err(error) => {
                        decode_error = Some(error);
                        return Some(bytes.to_vec());
                    }
                },
                None => Default::default(),
            };
            outcome = change(&mut map);
            Some(encode(&map))
        })?;
        match decode_error {
            Some(error) => Err(error),
            None => Ok(outcome),
        }
    }

    /// Appends a line to the tenant's history (clashes, failures, operator actions);
    /// keeps the newest 1,000.
    pub fn append_history(&self, line: &str) -> Result<(), StoreError> {
        let id = self.tree.generate_id_fallback()?;
        let entry = HistoryEntry {
            at: chrono::Utc::now().to_rfc3339(),
            message: line.to_string(),
        };
        let mut key = HISTORY_PREFIX.as_bytes().to_vec();
        key.extend_from_slice(&id.to_be_bytes());
        self.tree.insert(key, encode(&entry))?;
        let excess = self
            .tree
            .scan_prefix(HISTORY_PREFIX)
            .count()
            .saturating_sub(1_000);
        for old in self.tree.scan_prefix(HISTORY_PREFIX).take(excess) {
            self.tree.remove(old?.0)?;
        }
        Ok(())
    }

    /// The history, oldest first.
    pub fn history(&self) -> Result<Vec<HistoryEntry>, StoreError> {
        self.tree
            .scan_prefix(HISTORY_PREFIX)
            .map(|entry| {
                let (key, value) = entry?;
                decode(&key, &value)
            })
            .collect()
    }

    fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.tree
            .get(key)?
            .map(|value| decode(key.as_bytes(), &value))
            .transpose()
    }

    fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        self.tree.insert(key, encode(value))?;
        Ok(())
    }

    fn scan<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(String, T)>, StoreError> {
        self.tree
            .scan_prefix(prefix)
            .map(|entry| {
                let (key, value) = entry?;
                let id = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
                Ok((id, decode(&key, &value)?))
            })
            .collect()
    }
}

/// One line of a tenant's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// RFC 3339.
    pub at: String,
    /// What happened.
    pub message: String,
}

trait GenerateId {
    fn generate_id_fallback(&self) -> Result<u64, StoreError>;
}

impl GenerateId for Tree {
    /// A per-tree increasing id kept under a counter key (sled's `generate_id` lives on
    /// `Db`, and the tree handle is all a tenant owns).
    fn generate_id_fallback(&self) -> Result<u64, StoreError> {
        let next = self.update_and_fetch("state\0history_seq", |old| {
            let current = old
                .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            Some((current + 1).to_be_bytes().to_vec())
        })?;
        Ok(next
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("stored types serialise to JSON")
}

fn decode<T: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(value).map_err(|error| StoreError::Decode {
        key: String::from_utf8_lossy(key).replace('\0', "/"),
        message: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::conformance::{on_every_backend, on_every_backend_reopening};
    use super::*;
    use crate::domain::tenant::parse_spec;

    fn spec(id: &str) -> TenantSpec {
        parse_spec(serde_json::json!({
            "id": id,
            "personio": {"base_url": "http://p", "client_id": "a", "client_secret": "b"},
            "learnamp": {"base_url": "http://l", "client_id": "c", "client_secret": "d"}
        }))
        .unwrap()
    }

    /// On one thread the order is fixed: the delivery is queued (it passed the route
    /// check), the purge runs, then the commit that holds the delivery.
    #[tokio::test]
    async fn a_delivery_racing_a_purge_does_not_recreate_the_tree() {
        on_every_backend(
            "a_delivery_racing_a_purge_does_not_recreate_the_tree",
            |store| async move {
                assert!(store.insert_new_tenant_spec(&spec("gone")).await.unwrap());
                let tenant = store.tenant("gone").await.unwrap();
                tenant.push_event(&inbox::test_event("1")).await.unwrap();
                drop(tenant);
                let mut late =
                    Box::pin(store.append_event(Arc::from("gone"), inbox::test_event("2")));
                assert!(futures::poll!(late.as_mut()).is_pending());
                store.remove_tenant("gone", true).await.unwrap();
                late.await.unwrap();
                assert!(
                    !store.has_tenant_data("gone").await,
                    "the purged tree came back"
                );
                // Created anew, the tenant's deliveries are stored again.
                assert!(store.insert_new_tenant_spec(&spec("gone")).await.unwrap());
                store
                    .append_event(Arc::from("gone"), inbox::test_event("3"))
                    .await
                    .unwrap();
                assert_eq!(store.tenant("gone").await.unwrap().pending_count().await, 1);
            },
        )
        .await;
    }

    /// A tenant handle kept past a purge (a view or drain still holding it) reads an
    /// empty inbox and does not bring the purged tree back.
    #[tokio::test]
    async fn inbox_reads_through_a_handle_kept_past_a_purge_do_not_recreate_the_tree() {
        on_every_backend(
            "inbox_reads_through_a_handle_kept_past_a_purge_do_not_recreate_the_tree",
            |store| async move {
                assert!(store.insert_new_tenant_spec(&spec("gone")).await.unwrap());
                let kept = store.tenant("gone").await.unwrap();
                let sequence = kept.push_event(&inbox::test_event("1")).await.unwrap();
                store.remove_tenant("gone", true).await.unwrap();
                assert_eq!(kept.pending_count().await, 0);
                assert!(kept.pending_events(10).await.unwrap().is_empty());
                kept.remove_events(&[sequence]).await.unwrap();
                assert!(
                    !store.has_tenant_data("gone").await,
                    "the purged tree came back"
                );
            },
        )
        .await;
    }

    #[tokio::test]
    async fn data_survives_a_reopen() {
        on_every_backend_reopening("data_survives_a_reopen", |data| async move {
            {
                let store = data.open().await;
                assert!(store.insert_new_tenant_spec(&spec("acme")).await.unwrap());
                assert!(!store.insert_new_tenant_spec(&spec("acme")).await.unwrap());
                let tenant = store.tenant("acme").await.unwrap();
                let record = EmployeeRecord {
                    learnamp_id: 7,
                    invited: true,
                    ..Default::default()
                };
                tenant.put_employee("4711", &record).unwrap();
                tenant.append_history("hello").unwrap();
                store.flush().await.unwrap();
            }
            let store = data.open().await;
            assert_eq!(store.tenant_specs().await.unwrap().len(), 1);
            let tenant = store.tenant("acme").await.unwrap();
            assert_eq!(tenant.employee("4711").unwrap().unwrap().learnamp_id, 7);
            assert_eq!(tenant.employees().unwrap()[0].0, "4711");
            assert_eq!(tenant.history().unwrap()[0].message, "hello");
            store.remove_tenant("acme", true).await.unwrap();
            assert!(store.tenant_spec("acme").await.unwrap().is_none());
            assert!(
                store
                    .tenant("acme")
                    .await
                    .unwrap()
                    .employees()
                    .unwrap()
                    .is_empty()
            );
        })
        .await;
    }

    /// A database holding secrets sealed under one key refuses another (on sled:
    /// `crypto.rs`'s tests).
    #[tokio::test]
    async fn another_key_is_refused_on_postgres() {
        let Some(database) =
            backend::postgres::testing::fresh_database("another_key_is_refused_on_postgres").await
        else {
            return;
        };
        let store = conformance::postgres_store(&database).await;
        assert!(store.insert_new_tenant_spec(&spec("acme")).await.unwrap());
        drop(store);
        let options = PgOptions {
            url: database.url().to_string(),
            password: None,
            pool: 2,
        };
        let wrong = Store::open_postgres(
            &options,
            Path::new(""),
            KeySource::Given(SecretKey::generate()),
        )
        .await;
        assert!(
            matches!(wrong, Err(StoreError::Crypto(CryptoError::WrongKey))),
            "another key is refused"
        );
    }
}
