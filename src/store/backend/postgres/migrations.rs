//! The schema, as versioned migrations embedded in the binary, and the runner that
//! brings a database up to date at start.
//!
//! The runner holds a transaction-scoped advisory lock for the whole run, so nodes
//! starting together apply each migration once; every pending migration and its
//! `schema_migrations` row commit together. A database already past the newest
//! migration this binary knows is refused (an older binary must not write to a schema
//! it does not understand).

use sqlx::{Connection, PgPool};

use super::PgError;

/// One schema change. Versions increase; a released migration is never edited.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// Its version (`schema_migrations.version`).
    pub(crate) version: i64,
    /// What it does, stored beside the version.
    pub(crate) description: &'static str,
    /// The SQL, several statements allowed.
    pub(crate) sql: &'static str,
}

/// Every migration of this binary, oldest first.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "meta, tenant_kv, inbox, id_seq, leases, nodes",
        sql: include_str!("migrations/0001_schema.sql"),
    },
    Migration {
        version: 2,
        description: "cluster directory: tenant_views, tenant_commands, NOTIFY specs and commands",
        sql: include_str!("migrations/0002_directory.sql"),
    },
];

/// The advisory lock key the runner holds ("persync" + migration lock).
const LOCK_KEY: i64 = 0x7065_7273_796e_6301;

/// Brings the database up to the newest of `migrations`; returns the schema version
/// it is at afterwards.
pub(crate) async fn run(pool: &PgPool, migrations: &[Migration]) -> Result<i64, PgError> {
    let binary = migrations.last().map_or(0, |migration| migration.version);
    let mut connection = pool.acquire().await?;
    let mut transaction = connection.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *transaction)
        .await?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version     bigint PRIMARY KEY,
             description text NOT NULL,
             applied_at  timestamptz NOT NULL DEFAULT now()
         )",
    )
    .execute(&mut *transaction)
    .await?;
    let database: i64 =
        sqlx::query_scalar("SELECT COALESCE(max(version), 0) FROM schema_migrations")
            .fetch_one(&mut *transaction)
            .await?;
    if database > binary {
        return Err(PgError::SchemaTooNew { database, binary });
    }
    for migration in migrations.iter().filter(|m| m.version > database) {
        sqlx::raw_sql(migration.sql)
            .execute(&mut *transaction)
            .await?;
        sqlx::query("INSERT INTO schema_migrations (version, description) VALUES ($1, $2)")
            .bind(migration.version)
            .bind(migration.description)
            .execute(&mut *transaction)
            .await?;
        tracing::info!(
            version = migration.version,
            description = migration.description,
            "applied PostgreSQL migration"
        );
    }
    transaction.commit().await?;
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::super::testing::fresh_database;
    use super::*;

    async fn pool(url: &str) -> PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(url)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn migrations_apply_once_even_when_nodes_start_together() {
        let Some(db) = fresh_database("migrations_apply_once_even_when_nodes_start_together").await
        else {
            return;
        };
        let pools = [
            pool(db.url()).await,
            pool(db.url()).await,
            pool(db.url()).await,
        ];
        let runs = futures::future::join_all(pools.iter().map(|pool| run(pool, MIGRATIONS))).await;
        let latest = MIGRATIONS.last().unwrap().version;
        for outcome in runs {
            assert_eq!(outcome.unwrap(), latest);
        }
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
                .fetch_all(&pools[0])
                .await
                .unwrap();
        assert_eq!(applied, (1..=latest).collect::<Vec<_>>());
        for table in ["meta", "tenant_kv", "inbox", "leases", "nodes"] {
            let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&pools[0])
                .await
                .unwrap();
            assert_eq!(count, 0, "{table}");
        }
        // A second start finds nothing to do.
        assert_eq!(run(&pools[1], MIGRATIONS).await.unwrap(), latest);
    }

    #[tokio::test]
    async fn a_later_migration_applies_on_top_and_a_newer_database_is_refused() {
        let Some(db) =
            fresh_database("a_later_migration_applies_on_top_and_a_newer_database_is_refused")
                .await
        else {
            return;
        };
        let pool = pool(db.url()).await;
        run(&pool, MIGRATIONS).await.unwrap();
        let latest = MIGRATIONS.last().unwrap().version;
        let mut newer = MIGRATIONS.to_vec();
        newer.push(Migration {
            version: latest + 1,
            description: "test column",
            sql: "ALTER TABLE nodes ADD COLUMN zone text; CREATE INDEX ON nodes (zone);",
        });
        assert_eq!(run(&pool, &newer).await.unwrap(), latest + 1);
        sqlx::query("INSERT INTO nodes (node_id, heartbeat_at, zone) VALUES ('n', now(), 'z')")
            .execute(&pool)
            .await
            .unwrap();
        let error = run(&pool, MIGRATIONS).await.unwrap_err();
        assert!(
            matches!(
                error,
                PgError::SchemaTooNew { database, binary } if database == latest + 1 && binary == latest
            ),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains(&format!("version {}", latest + 1))
                && message.contains(&format!("version {latest}")),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_failing_migration_leaves_nothing_behind() {
        let Some(db) = fresh_database("a_failing_migration_leaves_nothing_behind").await else {
            return;
        };
        let pool = pool(db.url()).await;
        let broken = [
            MIGRATIONS[0],
            Migration {
                version: 2,
                description: "broken",
                sql: "CREATE TABLE half (x int); SELECT no_such_function();",
            },
        ];
        assert!(run(&pool, &broken).await.is_err());
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('meta', 'half', 'schema_migrations')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(tables, 0, "the whole run rolled back");
        assert_eq!(
            run(&pool, MIGRATIONS).await.unwrap(),
            MIGRATIONS.last().unwrap().version
        );
    }
}
