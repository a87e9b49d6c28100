//! A fresh PostgreSQL database per test, for the store's tests and (re-exported by
//! the testkit) the integration tests.
//!
//! The server comes from `PERSONIO_SYNC_TEST_PG_URL` (an admin URL, see
//! `scripts/test-postgres.sh`). Without it a test prints a SKIP line and does not run,
//! unless `CI` is set: CI never skips.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

/// The variable holding the admin URL of the test server.
pub const URL_ENV: &str = "PERSONIO_SYNC_TEST_PG_URL";

/// A database created for one test, dropped (best effort) when this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// The database's URL (with the test server's password).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name (`t_<random>`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A new empty database for the test `test_name`, or `None` (after printing why) when
/// no test server is configured. Panics when one is configured but unusable, or when
/// none is and `CI` is set.
pub async fn fresh_database(test_name: &str) -> Option<TestDatabase> {
    let Ok(admin_url) = std::env::var(URL_ENV) else {
        let message = format!(
            "SKIP (PostgreSQL): {test_name} — start one with: eval \"$(scripts/test-postgres.sh start)\""
        );
        if std::env::var_os("CI").is_some() {
            panic!("{message}");
        }
        println!("{message}");
        return None;
    };
    let name = format!("t_{:016x}", rand::random::<u64>());
    let mut admin = connect(&admin_url).await;
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|error| panic!("{test_name}: CREATE DATABASE {name} failed: {error}"));
    let _ = admin.close().await;
    let url = with_database(&admin_url, &name);
    Some(TestDatabase {
        admin_url,
        name,
        url,
    })
}

async fn connect(admin_url: &str) -> PgConnection {
    let options = PgConnectOptions::from_str(admin_url)
        .unwrap_or_else(|_| panic!("{URL_ENV} is not a PostgreSQL URL"))
        .disable_statement_logging();
    PgConnection::connect_with(&options)
        .await
        .unwrap_or_else(|error| panic!("cannot reach the test PostgreSQL ({URL_ENV}): {error}"))
}

/// `url` with its database (path) replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let authority = url.find("://").map_or(0, |at| at + 3);
    let (base, query) = match url.find('?') {
        Some(at) => url.split_at(at),
        None => (url, ""),
    };
    let path_start = base[authority..]
        .find('/')
        .map_or(base.len(), |at| authority + at);
    format!("{}/{database}{query}", &base[..path_start])
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // A thread of its own: the test's runtime may be shutting down or be a
        // current-thread one that cannot block.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let options = PgConnectOptions::from_str(&admin_url).ok()?;
                let mut admin = PgConnection::connect_with(&options).await.ok()?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        });
        let _ = dropped.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://u:p@127.0.0.1:5/postgres", "t_1"),
            "postgres://u:p@127.0.0.1:5/t_1"
        );
        assert_eq!(
            with_database("postgres://u:p@h:5/postgres?sslmode=disable", "t_1"),
            "postgres://u:p@h:5/t_1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t_1"), "postgres://h/t_1");
    }
}
