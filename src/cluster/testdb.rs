//! A fresh PostgreSQL database per test, with this binary's schema (the `leases` and
//! `nodes` tables among it) from the store's migrations.

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::store::crypto::{KeySource, SecretKey};
use crate::store::postgres_testing::{TestDatabase, fresh_database};
use crate::store::{PgOptions, Store};

/// A database of its own for one test, dropped at the end.
pub struct TestDb {
    /// A pool on it.
    pub pool: PgPool,
    database: TestDatabase,
}

/// A fresh, migrated database for `test`, or `None` (after the SKIP line) when no
/// PostgreSQL is configured; with `CI` set, a missing PostgreSQL fails the test.
pub async fn fresh(test: &str) -> Option<TestDb> {
    let database = fresh_database(test).await?;
    let options = PgOptions {
        url: database.url().to_string(),
        password: None,
        pool: 1,
    };
    // Opening a store migrates the schema.
    let key_dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open_postgres(
        &options,
        key_dir.path(),
        KeySource::Given(SecretKey::generate()),
    )
    .await
    .expect("the store opens on the fresh database");
    drop(store);
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(database.url())
        .await
        .expect("the fresh database answers");
    Some(TestDb { pool, database })
}

impl TestDb {
    /// Closes the pool and drops the database.
    pub async fn drop(self) {
        self.pool.close().await;
        drop(self.database);
    }
}
