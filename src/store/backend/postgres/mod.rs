//! The PostgreSQL backend: the storage primitives of the store over a `PgPool`.
//!
//! Keys and values keep the byte encodings of the sled backend (so raw exports move
//! between backends unchanged): `meta` holds the registry, `tenant_kv` every tenant's
//! rows, `inbox` the webhook inboxes (one row per stored group of events), `id_seq`
//! the generated ids. The owner of a tenant holds its rows in a [`CachedTree`] and
//! commits the changes with [`PgBackend::commit_tree`]. With fencing on (cluster mode)
//! every commit for a tenant first checks, in its transaction, that this node still
//! holds the tenant's lease ([`PgBackend::set_fence`]).

pub(crate) mod cached_tree;
// The LISTEN task and the fences serve cluster mode (leases), wired in by it.
#[allow(dead_code)]
mod listen;
pub(crate) mod migrations;
mod primitives;
pub mod testing;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

pub(crate) use cached_tree::{CachedTree, Changes};
pub(crate) use listen::InboxSignal;

/// A failure of the PostgreSQL backend.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The database failed or could not be reached.
    #[error("PostgreSQL failed: {0}")]
    Database(#[from] sqlx::Error),
    /// `storage.postgres_url` does not parse (the URL itself is not repeated: it may
    /// hold a password).
    #[error("storage.postgres_url is not a valid PostgreSQL URL")]
    InvalidUrl,
    /// The database was migrated by a newer binary.
    #[error(
        "the database schema is at version {database}, newer than this binary's version {binary}: run a newer personio-sync"
    )]
    SchemaTooNew {
        /// The newest migration applied to the database.
        database: i64,
        /// The newest migration this binary knows.
        binary: i64,
    },
    /// This node does not hold the tenant's lease (any more): nothing of the commit
    /// was written.
    #[error("tenant {tenant}: this node does not hold its lease; the write was refused")]
    Fenced {
        /// The tenant.
        tenant: String,
    },
}

/// A stored inbox value: the encoded group of events (`inbox.rs`) and how many of
/// them are not processed yet.
pub(crate) type InboxValue = (Vec<u8>, usize);

/// The lease this node holds on a tenant: commits for the tenant succeed only while
/// the `leases` row still names this owner and epoch and has not expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// This node's id.
    pub owner: String,
    /// The lease epoch taken.
    pub epoch: i64,
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user@host:port/db` (a password here is used, but belongs in the
    /// environment).
    pub url: String,
    /// The password (from the variable `storage.postgres_password_env` names).
    pub password: Option<String>,
    /// Connections in the pool.
    pub pool: u32,
}

/// The PostgreSQL storage primitives (cheap to clone: one pool).
#[derive(Clone)]
pub(crate) struct PgBackend {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    /// Cluster mode: commits for a tenant need its fence.
    fencing: AtomicBool,
    fences: std::sync::Mutex<HashMap<String, Fence>>,
    /// The trees of the tenants this node writes, shared by every handle of a tenant.
    caches: std::sync::Mutex<HashMap<String, Arc<CachedTree>>>,
}

/// How often the background task commits dirty cached trees (sled flushes every
/// 500 ms on its own).
pub(crate) const COMMIT_TICK: Duration = Duration::from_millis(250);

/// The smallest key greater than every key starting with `prefix` (`None`: there is
/// none, the prefix is all 0xFF).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn to_db_id(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

/// Connections of the pool that `LISTEN` for good: the inbox listener and the
/// directory's.
const LISTEN_CONNECTIONS: u32 = 2;

impl PgBackend {
    /// Connects, and migrates the schema to this binary's version.
    pub(crate) async fn connect(options: &PgOptions) -> Result<Self, PgError> {
        let mut connect =
            PgConnectOptions::from_str(&options.url).map_err(|_| PgError::InvalidUrl)?;
        if let Some(password) = &options.password {
            connect = connect.password(password);
        }
        let pool = PgPoolOptions::new()
            // Two more for the LISTEN connections (inbox and directory), which each keep
            // one for good: the configured size stays for queries.
            .max_connections(options.pool.max(2) + LISTEN_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect.clone())
            .await?;
        let version = migrations::run(&pool, migrations::MIGRATIONS).await?;
        tracing::info!(
            host = connect.get_host(),
            port = connect.get_port(),
            database = connect.get_database().unwrap_or(""),
            user = connect.get_username(),
            schema_version = version,
            "connected to PostgreSQL"
        );
        let backend = Self {
            inner: Arc::new(Inner {
                pool,
                fencing: AtomicBool::new(false),
                fences: Default::default(),
                caches: Default::default(),
            }),
        };
        tokio::spawn(commit_tick(Arc::downgrade(&backend.inner)));
        Ok(backend)
    }

    /// The pool (tests, and the lease manager's own queries).
    pub(crate) fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    // ---- meta ----

    /// The `meta` value under `key`.
    pub(crate) async fn meta_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, PgError> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?)
    }

    /// `meta` entries whose key starts with `prefix`, in key order.
    pub(crate) async fn meta_scan_prefix(
        &self,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, PgError> {
        let rows = match prefix_end(prefix) {
            Some(end) => {
                sqlx::query_as(
                    "SELECT key, value FROM meta WHERE key >= $1 AND key < $2 ORDER BY key",
                )
                .bind(prefix)
                .bind(end)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query_as("SELECT key, value FROM meta WHERE key >= $1 ORDER BY key")
                    .bind(prefix)
                    .fetch_all(self.pool())
                    .await?
            }
        };
        Ok(rows)
    }

    /// Stores a `meta` value (durable on return).
    pub(crate) async fn meta_insert(&self, key: &[u8], value: &[u8]) -> Result<(), PgError> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(key)
        .bind(value)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes a `meta` value (durable on return).
    pub(crate) async fn meta_remove(&self, key: &[u8]) -> Result<(), PgError> {
        sqlx::query("DELETE FROM meta WHERE key = $1")
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Sets `key` to `new` (`None` removes it) only if it holds `old` now (`None`:
    /// absent); whether it did. Durable on return.
    pub(crate) async fn meta_compare_and_swap(
        &self,
        key: &[u8],
        old: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, PgError> {
        let pool = self.pool();
        let changed = match (old, new) {
            (None, Some(new)) => sqlx::query(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(new)
            .execute(pool)
            .await?
            .rows_affected(),
            (Some(old), Some(new)) => {
                sqlx::query("UPDATE meta SET value = $3 WHERE key = $1 AND value = $2")
                    .bind(key)
                    .bind(old)
                    .bind(new)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
            (Some(old), None) => sqlx::query("DELETE FROM meta WHERE key = $1 AND value = $2")
                .bind(key)
                .bind(old)
                .execute(pool)
                .await?
                .rows_affected(),
            (None, None) => {
                let absent: bool =
                    sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM meta WHERE key = $1)")
                        .bind(key)
                        .fetch_one(pool)
                        .await?;
                u64::from(absent)
            }
        };
        Ok(changed == 1)
    }

    // ---- tenant rows ----

    /// Every row of `tenant`.
    pub(crate) async fn tenant_rows(
        &self,
        tenant: &str,
    ) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, PgError> {
        let rows: Vec<(Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT key, value FROM tenant_kv WHERE tenant = $1")
                .bind(tenant)
                .fetch_all(self.pool())
                .await?;
        Ok(rows.into_iter().collect())
    }

    /// A cached tree of `tenant`'s rows as stored now.
    pub(crate) async fn load_tree(&self, tenant: &str) -> Result<Arc<CachedTree>, PgError> {
        Ok(Arc::new(CachedTree::new(self.tenant_rows(tenant).await?)))
    }

    /// Writes `changes` to `tenant`'s rows in one transaction (fenced in cluster mode):
    /// all of them or, on an error, none.
    pub(crate) async fn tenant_commit(
        &self,
        tenant: &str,
        changes: &Changes,
    ) -> Result<(), PgError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut upsert_keys = Vec::new();
        let mut upsert_values = Vec::new();
        let mut removed = Vec::new();
        for (key, value) in changes {
            match value {
                Some(value) => {
                    upsert_keys.push(key.as_slice());
                    upsert_values.push(value.as_slice());
                }
                None => removed.push(key.as_slice()),
            }
        }
        let mut transaction = self.fenced_transaction(tenant).await?;
        if !removed.is_empty() {
            sqlx::query("DELETE FROM tenant_kv WHERE tenant = $1 AND key = ANY($2)")
                .bind(tenant)
                .bind(&removed)
                .execute(&mut *transaction)
                .await?;
        }
        if !upsert_keys.is_empty() {
            sqlx::query(
                "INSERT INTO tenant_kv (tenant, key, value)
                 SELECT $1, key, value FROM UNNEST($2::bytea[], $3::bytea[]) AS row(key, value)
                 ON CONFLICT (tenant, key) DO UPDATE SET value = EXCLUDED.value",
            )
            .bind(tenant)
            .bind(&upsert_keys)
            .bind(&upsert_values)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Commits the changes waiting in `tree` (of `tenant`). A write made while the
    /// commit runs waits for the next one; on failure the changes wait again.
    pub(crate) async fn commit_tree(&self, tenant: &str, tree: &CachedTree) -> Result<(), PgError> {
        let _commit = tree.commit_guard().await;
        if tree.is_retired() {
            return Ok(());
        }
        let changes = tree.take_dirty();
        if changes.is_empty() {
            return Ok(());
        }
        match self.tenant_commit(tenant, &changes).await {
            Ok(()) => Ok(()),
            Err(error) => {
                tree.restore_dirty(changes);
                Err(error)
            }
        }
    }

    /// The tree of `tenant` to read and write: the shared cache, loaded on first use.
    /// In cluster mode a tenant this node holds no lease on gets a fresh snapshot
    /// instead, never committed (read-only here).
    pub(crate) async fn open_cached(&self, tenant: &str) -> Result<Arc<CachedTree>, PgError> {
        if self.inner.fencing.load(Ordering::SeqCst) && self.fence(tenant).is_none() {
            return self.load_tree(tenant).await;
        }
        if let Some(tree) = self.cached(tenant) {
            return Ok(tree);
        }
        let fence = self.fence(tenant);
        let loaded = self.load_tree(tenant).await?;
        // Another caller may have loaded it meanwhile: the first one stays. A lease
        // lost (or taken again) while the rows were read makes them a snapshot only:
        // the eviction that follows a lost lease may already have run.
        let mut caches = crate::locks::lock(&self.inner.caches);
        if self.inner.fencing.load(Ordering::SeqCst) && self.fence(tenant) != fence {
            return Ok(loaded);
        }
        Ok(caches.entry(tenant.to_string()).or_insert(loaded).clone())
    }

    /// The shared cached tree of `tenant`, if loaded.
    pub(crate) fn cached(&self, tenant: &str) -> Option<Arc<CachedTree>> {
        crate::locks::lock(&self.inner.caches).get(tenant).cloned()
    }

    /// Tenants whose cached tree holds rows (committed or not).
    pub(crate) fn cached_tenants_with_rows(&self) -> Vec<String> {
        crate::locks::lock(&self.inner.caches)
            .iter()
            .filter(|(_, tree)| !tree.is_empty())
            .map(|(tenant, _)| tenant.clone())
            .collect()
    }

    /// Forgets the cached tree of `tenant` (purged, or its lease lost) once no commit
    /// of it is in flight: handles still held write to a tree nobody commits any more.
    pub(crate) async fn evict(&self, tenant: &str) {
        let evicted = crate::locks::lock(&self.inner.caches).remove(tenant);
        if let Some(tree) = evicted {
            let _commit = tree.commit_guard().await;
            tree.retire();
        }
    }

    /// Commits the changes waiting in the cached tree of `tenant` (none loaded: none).
    /// In cluster mode a tenant with no cached tree may be one whose lease was lost
    /// (its tree evicted while a handle still writes to it): the lease is checked, so
    /// such a flush fails with [`PgError::Fenced`] instead of dropping the writes.
    pub(crate) async fn commit_tenant(&self, tenant: &str) -> Result<(), PgError> {
        match self.cached(tenant) {
            Some(tree) => self.commit_tree(tenant, &tree).await,
            None if self.inner.fencing.load(Ordering::SeqCst) => {
                self.fenced_transaction(tenant).await?.rollback().await?;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Commits every dirty cached tree. A tenant whose lease is lost is evicted (its
    /// next owner reconciles) and does not fail the others; any other failure is
    /// returned after every tree was tried.
    pub(crate) async fn commit_dirty(&self) -> Result<(), PgError> {
        let dirty: Vec<(String, Arc<CachedTree>)> = crate::locks::lock(&self.inner.caches)
            .iter()
            .filter(|(_, tree)| tree.is_dirty())
            .map(|(tenant, tree)| (tenant.clone(), tree.clone()))
            .collect();
        let mut outcome = Ok(());
        for (tenant, tree) in dirty {
            match self.commit_tree(&tenant, &tree).await {
                Ok(()) => {}
                Err(PgError::Fenced { .. }) => {
                    tracing::warn!(tenant = %tenant, "lease lost: uncommitted changes dropped");
                    self.evict(&tenant).await;
                }
                Err(error) => {
                    if outcome.is_ok() {
                        outcome = Err(error);
                    }
                }
            }
        }
        outcome
    }

    /// Ids of the tenants with stored rows or inbox events.
    pub(crate) async fn tenant_data_ids(&self) -> Result<Vec<String>, PgError> {
        Ok(sqlx::query_scalar(
            "SELECT tenant FROM tenant_kv UNION SELECT tenant FROM inbox ORDER BY tenant",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// Whether `tenant` has stored rows or inbox events.
    pub(crate) async fn has_tenant_data(&self, tenant: &str) -> Result<bool, PgError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM tenant_kv WHERE tenant = $1)
                 OR EXISTS (SELECT 1 FROM inbox WHERE tenant = $1)",
        )
        .bind(tenant)
        .fetch_one(self.pool())
        .await?)
    }

    /// Removes every row and inbox event of `tenant`, in one transaction that first
    /// ends its lease (a new epoch, no owner): the node that ran it, even one that has
    /// not yet seen the delete, can never commit its last writes over the purge (its
    /// fenced commits wait for this transaction, then find the lease gone).
    pub(crate) async fn drop_tenant_data(&self, tenant: &str) -> Result<(), PgError> {
        let mut transaction = self.pool().begin().await?;
        sqlx::query(
            "UPDATE leases SET owner = NULL, expires_at = NULL, epoch = epoch + 1 WHERE tenant = $1",
        )
        .bind(tenant)
        .execute(&mut *transaction)
        .await?;
        for table in ["tenant_kv", "inbox"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE tenant = $1"))
                .bind(tenant)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    // ---- inbox ----

    /// Stores inbox values (each an encoded group and its number of live events) for
    /// several tenants in one transaction, each under a fresh id from `id_seq`, and
    /// notifies channel `inbox` once per tenant (delivered on commit). Not fenced: any
    /// node accepts deliveries. Returns the ids given, in the order of `batch`.
    pub(crate) async fn inbox_insert(
        &self,
        batch: &[(&str, Vec<InboxValue>)],
    ) -> Result<Vec<Vec<u64>>, PgError> {
        let total: usize = batch.iter().map(|(_, values)| values.len()).sum();
        if total == 0 {
            return Ok(vec![Vec::new(); batch.len()]);
        }
        let mut transaction = self.pool().begin().await?;
        let mut drawn: Vec<i64> =
            sqlx::query_scalar("SELECT nextval('id_seq') FROM generate_series(1, $1)")
                .bind(i64::try_from(total).unwrap_or(i64::MAX))
                .fetch_all(&mut *transaction)
                .await?;
        drawn.sort_unstable();
        let mut drawn = drawn.into_iter();
        let (mut tenants, mut ids, mut values, mut live) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut given = Vec::with_capacity(batch.len());
        let mut notified = Vec::new();
        for (tenant, tenant_values) in batch {
            let mut tenant_ids = Vec::with_capacity(tenant_values.len());
            for (value, count) in tenant_values {
                let id = drawn.next().expect("one id drawn per value");
                tenants.push(*tenant);
                ids.push(id);
                values.push(value.as_slice());
                live.push(i32::try_from(*count).unwrap_or(i32::MAX));
                tenant_ids.push(id as u64);
            }
            if !tenant_values.is_empty() && !notified.contains(tenant) {
                notified.push(*tenant);
            }
            given.push(tenant_ids);
        }
        sqlx::query(
            "INSERT INTO inbox (tenant, id, value, live)
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bytea[], $4::int[])",
        )
        .bind(&tenants)
        .bind(&ids)
        .bind(&values)
        .bind(&live)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("SELECT pg_notify('inbox', tenant) FROM UNNEST($1::text[]) AS tenant")
            .bind(&notified)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(given)
    }

    /// Stores an inbox value under a given id (import of a raw export), replacing one
    /// stored there; the id generator is not moved (see
    /// [`Self::advance_generated_ids`]).
    pub(crate) async fn inbox_put(
        &self,
        tenant: &str,
        id: u64,
        value: &InboxValue,
    ) -> Result<(), PgError> {
        sqlx::query(
            "INSERT INTO inbox (tenant, id, value, live) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant, id) DO UPDATE SET value = EXCLUDED.value, live = EXCLUDED.live",
        )
        .bind(tenant)
        .bind(to_db_id(id))
        .bind(&value.0)
        .bind(i32::try_from(value.1).unwrap_or(i32::MAX))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Stored inbox values of `tenant` with ids after `after`, oldest first, at most
    /// `limit` of them.
    pub(crate) async fn inbox_values(
        &self,
        tenant: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, PgError> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT id, value FROM inbox WHERE tenant = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(tenant)
        .bind(after.map_or(-1, to_db_id))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, value)| (id as u64, value))
            .collect())
    }

    /// The stored inbox values of `tenant` under `ids` (the ones that exist).
    pub(crate) async fn inbox_get(
        &self,
        tenant: &str,
        ids: &[u64],
    ) -> Result<Vec<(u64, Vec<u8>)>, PgError> {
        let ids: Vec<i64> = ids.iter().copied().map(to_db_id).collect();
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT id, value FROM inbox WHERE tenant = $1 AND id = ANY($2) ORDER BY id",
        )
        .bind(tenant)
        .bind(&ids)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, value)| (id as u64, value))
            .collect())
    }

    /// Number of inbox events of `tenant` not processed yet.
    pub(crate) async fn inbox_count(&self, tenant: &str) -> Result<usize, PgError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COALESCE(sum(live), 0)::bigint FROM inbox WHERE tenant = $1",
        )
        .bind(tenant)
        .fetch_one(self.pool())
        .await?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// Applies the owner's changes to stored inbox values in one transaction (fenced
    /// in cluster mode): `None` removes the value (all its events processed), `Some`
    /// replaces it by the group with fewer live events.
    pub(crate) async fn inbox_apply(
        &self,
        tenant: &str,
        changes: &[(u64, Option<InboxValue>)],
    ) -> Result<(), PgError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut removed = Vec::new();
        let (mut ids, mut values, mut live) = (Vec::new(), Vec::new(), Vec::new());
        for (id, change) in changes {
            match change {
                None => removed.push(to_db_id(*id)),
                Some((value, count)) => {
                    ids.push(to_db_id(*id));
                    values.push(value.as_slice());
                    live.push(i32::try_from(*count).unwrap_or(i32::MAX));
                }
            }
        }
        let mut transaction = self.fenced_transaction(tenant).await?;
        if !removed.is_empty() {
            sqlx::query("DELETE FROM inbox WHERE tenant = $1 AND id = ANY($2)")
                .bind(tenant)
                .bind(&removed)
                .execute(&mut *transaction)
                .await?;
        }
        if !ids.is_empty() {
            sqlx::query(
                "UPDATE inbox SET value = row.value, live = row.live
                 FROM UNNEST($2::bigint[], $3::bytea[], $4::int[]) AS row(id, value, live)
                 WHERE inbox.tenant = $1 AND inbox.id = row.id",
            )
            .bind(tenant)
            .bind(&ids)
            .bind(&values)
            .bind(&live)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    #[allow(dead_code)] // cluster mode (leases)
    /// Notifications of new inbox events, see [`InboxSignal`].
    pub(crate) fn listen_inbox(&self) -> tokio::sync::mpsc::UnboundedReceiver<InboxSignal> {
        listen::spawn(self.inner.pool.clone())
    }

    // ---- ids ----

    /// The next generated id (shared by all nodes, increasing).
    pub(crate) async fn next_generated_id(&self) -> Result<u64, PgError> {
        let id: i64 = sqlx::query_scalar("SELECT nextval('id_seq')")
            .fetch_one(self.pool())
            .await?;
        Ok(id as u64)
    }

    /// Makes the generator hand out ids of at least `next` (never moves it back).
    pub(crate) async fn advance_generated_ids(&self, next: u64) -> Result<(), PgError> {
        sqlx::query(
            "SELECT setval('id_seq', GREATEST($1 - 1,
                 (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM id_seq)))",
        )
        .bind(to_db_id(next))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    // ---- fencing ----

    /// Turns cluster mode on: from now on a commit for a tenant needs its fence, and a
    /// tenant without one is read-only on this node.
    pub(crate) fn enable_fencing(&self) {
        self.inner.fencing.store(true, Ordering::SeqCst);
    }

    /// Records the lease this node holds on `tenant` (`None`: lost or released).
    pub(crate) fn set_fence(&self, tenant: &str, fence: Option<Fence>) {
        let mut fences = crate::locks::lock(&self.inner.fences);
        match fence {
            Some(fence) => fences.insert(tenant.to_string(), fence),
            None => fences.remove(tenant),
        };
    }

    /// The lease this node holds on `tenant`, if any.
    pub(crate) fn fence(&self, tenant: &str) -> Option<Fence> {
        crate::locks::lock(&self.inner.fences).get(tenant).cloned()
    }

    /// A transaction for a commit of `tenant`: in cluster mode it starts by checking
    /// (and holding, `FOR SHARE`) this node's lease row, else it is
    /// [`PgError::Fenced`] and nothing is written.
    async fn fenced_transaction(
        &self,
        tenant: &str,
    ) -> Result<Transaction<'static, Postgres>, PgError> {
        let fence = if self.inner.fencing.load(Ordering::SeqCst) {
            let Some(fence) = self.fence(tenant) else {
                crate::metrics::fenced_write(crate::metrics::FencedBy::Node);
                return Err(PgError::Fenced {
                    tenant: tenant.to_string(),
                });
            };
            Some(fence)
        } else {
            None
        };
        let mut transaction = self.pool().begin().await?;
        if let Some(fence) = fence {
            let held = sqlx::query(
                "SELECT 1 FROM leases WHERE tenant = $1 AND owner = $2 AND epoch = $3
                 AND expires_at > now() FOR KEY SHARE",
            )
            .bind(tenant)
            .bind(&fence.owner)
            .bind(fence.epoch)
            .fetch_optional(&mut *transaction)
            .await?
            .is_some();
            if !held {
                transaction.rollback().await?;
                crate::metrics::fenced_write(crate::metrics::FencedBy::Database);
                return Err(PgError::Fenced {
                    tenant: tenant.to_string(),
                });
            }
        }
        Ok(transaction)
    }
}

/// Commits dirty cached trees every [`COMMIT_TICK`] until the backend is dropped or
/// its pool closed.
async fn commit_tick(inner: std::sync::Weak<Inner>) {
    loop {
        tokio::time::sleep(COMMIT_TICK).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if inner.pool.is_closed() {
            return;
        }
        if let Err(error) = (PgBackend { inner }).commit_dirty().await {
            tracing::warn!(%error, "background commit of cached tenant trees failed");
        }
    }
}

#[cfg(test)]
mod tests;
