//! TEST-ONLY: a fresh PostgreSQL database per test, holding the `leases` and `nodes`
//! tables of DESIGN-17 (migration 0001). To be replaced by the store's fresh-database
//! helper and `PgBackend`'s migrations once the storage backend lands; the DDL here
//! copies the design's, nothing more.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool};

/// The environment variable holding the admin URL of a throw-away PostgreSQL.
pub const URL_ENV: &str = "PERSONIO_SYNC_TEST_PG_URL";

const DDL: &str = "
    CREATE TABLE leases (tenant text PRIMARY KEY, owner text, epoch bigint NOT NULL DEFAULT 0,
                         expires_at timestamptz);
    CREATE TABLE nodes (node_id text PRIMARY KEY, address text, heartbeat_at timestamptz NOT NULL,
                        draining bool NOT NULL DEFAULT false);
";

/// A database of its own for one test.
pub struct TestDb {
    /// A pool on it.
    pub pool: PgPool,
    admin: PgPool,
    name: String,
}

/// A fresh database for `test`, or `None` (after printing the SKIP line) when no
/// PostgreSQL is configured; with `CI` set, a missing PostgreSQL fails the test.
pub async fn fresh(test: &str) -> Option<TestDb> {
    let Ok(url) = std::env::var(URL_ENV) else {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: {URL_ENV} is not set, and CI never skips the PostgreSQL tests");
        }
        println!(
            "SKIP (PostgreSQL): {test} — start one with: eval \"$(scripts/test-postgres.sh start)\""
        );
        return None;
    };
    let options: PgConnectOptions = url.parse().expect("PERSONIO_SYNC_TEST_PG_URL parses");
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
        .expect("the test PostgreSQL answers");
    let name = format!("t_{:016x}", rand::random::<u64>());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("CREATE DATABASE");
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(options.database(&name))
        .await
        .expect("the fresh database answers");
    pool.execute(DDL).await.expect("the lease tables");
    Some(TestDb { pool, admin, name })
}

impl TestDb {
    /// Drops the database (best effort).
    pub async fn drop(self) {
        self.pool.close().await;
        let _ = self
            .admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await;
    }
}
