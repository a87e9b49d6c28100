//! The store's tests run on every backend: [`on_every_backend`] runs one test body on
//! a throw-away sled store and on a store over a fresh PostgreSQL database (skipped
//! without a test server, see `backend/postgres/testing.rs`).

use std::future::Future;
use std::path::Path;

use super::Store;
use super::backend::postgres::PgOptions;
use super::backend::postgres::testing::{TestDatabase, fresh_database};
use super::crypto::{KeySource, SecretKey};

/// A store over the fresh database `database`, with a random key.
pub(crate) async fn postgres_store(database: &TestDatabase) -> Store {
    postgres_store_with_key(database, SecretKey::generate()).await
}

/// A store over `database` with secrets under `key`.
pub(crate) async fn postgres_store_with_key(database: &TestDatabase, key: SecretKey) -> Store {
    let options = PgOptions {
        url: database.url().to_string(),
        password: None,
        pool: 4,
    };
    Store::open_postgres(&options, Path::new(""), KeySource::Given(key))
        .await
        .unwrap()
}

/// Runs `body` on a throw-away sled store, then on a store over a fresh PostgreSQL
/// database; the output names the backend before each run.
pub(crate) async fn on_every_backend<F, Fut>(test: &str, body: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    println!("{test}: on sled");
    body(Store::temporary().await.unwrap()).await;
    if let Some(database) = fresh_database(test).await {
        println!("{test}: on PostgreSQL");
        body(postgres_store(&database).await).await;
    }
}

/// Runs `body` on a throw-away sled backend, then on a backend over a fresh PostgreSQL
/// database (the group committer's tests, below the store).
pub(crate) async fn on_every_raw_backend<F, Fut>(test: &str, body: F)
where
    F: Fn(std::sync::Arc<super::backend::Backend>) -> Fut,
    Fut: Future<Output = ()>,
{
    println!("{test}: on sled");
    let sled = super::backend::SledBackend::temporary().unwrap();
    body(std::sync::Arc::new(super::backend::Backend::Sled(sled))).await;
    if let Some(database) = fresh_database(test).await {
        println!("{test}: on PostgreSQL");
        let options = PgOptions {
            url: database.url().to_string(),
            password: None,
            pool: 4,
        };
        let postgres = super::backend::PgBackend::connect(&options).await.unwrap();
        body(std::sync::Arc::new(super::backend::Backend::Postgres(
            postgres,
        )))
        .await;
    }
}

/// A test store's data, opened again as a restarted process would.
pub(crate) struct Reopenable {
    place: Place,
    key: SecretKey,
}

enum Place {
    Sled(tempfile::TempDir),
    Postgres(TestDatabase),
}

impl Reopenable {
    /// A store over the data (drop the previous one first on sled: one process).
    pub(crate) async fn open(&self) -> Store {
        match &self.place {
            Place::Sled(dir) => Store::open_with_key(dir.path(), 8, self.key.clone())
                .await
                .unwrap(),
            Place::Postgres(database) => postgres_store_with_key(database, self.key.clone()).await,
        }
    }
}

/// Like [`on_every_backend`], for a body that reopens the store: a sled directory,
/// then a fresh PostgreSQL database.
pub(crate) async fn on_every_backend_reopening<F, Fut>(test: &str, body: F)
where
    F: Fn(Reopenable) -> Fut,
    Fut: Future<Output = ()>,
{
    println!("{test}: on sled");
    body(Reopenable {
        place: Place::Sled(tempfile::tempdir().unwrap()),
        key: SecretKey::generate(),
    })
    .await;
    if let Some(database) = fresh_database(test).await {
        println!("{test}: on PostgreSQL");
        body(Reopenable {
            place: Place::Postgres(database),
            key: SecretKey::generate(),
        })
        .await;
    }
}
