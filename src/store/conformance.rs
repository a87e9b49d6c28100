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
    let options = PgOptions {
        url: database.url().to_string(),
        password: None,
        pool: 4,
    };
    Store::open_postgres(
        &options,
        Path::new(""),
        KeySource::Given(SecretKey::generate()),
    )
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
