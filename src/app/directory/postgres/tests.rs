//! Two directories (two nodes) on one fresh PostgreSQL database, each with a fake
//! host: views, commands and spec notifications cross from one to the other.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::PgPool;

use crate::store::postgres_testing::TestDatabase;

use super::PgDirectory;
use crate::actors::status::{TenantState, TenantView, TenantViews};
use crate::app::directory::{Command, CommandOutcome, Directory, FailureKind, Host};
use crate::locks::lock;

/// A fresh database migrated to 0001 (the store's) and 0002 (the directory's), kept
/// until the test ends; `None` (after the SKIP line) without a test server.
async fn fresh_database(test: &str) -> Option<TestDatabase> {
    let database = crate::store::postgres_testing::fresh_database(test).await?;
    let options = crate::store::PgOptions {
        url: database.url().to_string(),
        password: None,
        pool: 2,
    };
    // Opening the store migrates to 0001.
    crate::store::Store::open_postgres(
        &options,
        std::path::Path::new(""),
        crate::store::crypto::KeySource::Given(crate::store::crypto::SecretKey::generate()),
    )
    .await
    .expect("the store opens on the fresh database");
    let pool = PgPool::connect(database.url()).await.unwrap();
    sqlx::raw_sql(super::MIGRATION_0002_SQL)
        .execute(&pool)
        .await
        .expect("migration 0002 applies");
    pool.close().await;
    Some(database)
}

/// A node of the test: its views, which tenants run on it, and what it was told.
#[derive(Default)]
struct FakeHost {
    name: String,
    views: TenantViews,
    running: Mutex<HashSet<String>>,
    specs_changed: Mutex<Vec<String>>,
    executed: Mutex<Vec<(String, Command)>>,
    woken: Mutex<Vec<String>>,
}

impl Host for FakeHost {
    fn views(&self) -> &TenantViews {
        &self.views
    }
    fn running(&self, id: &str) -> bool {
        lock(&self.running).contains(id)
    }
    fn spec_changed(&self, id: String) -> BoxFuture<'_, ()> {
        lock(&self.specs_changed).push(id);
        async {}.boxed()
    }
    fn refresh_specs(&self) -> BoxFuture<'_, ()> {
        async {}.boxed()
    }
    fn execute(&self, id: String, command: Command) -> BoxFuture<'_, CommandOutcome> {
        lock(&self.executed).push((id, command));
        let node = self.name.clone();
        async move { Ok(serde_json::json!({ "ran_on": node })) }.boxed()
    }
    fn wake(&self, id: &str) {
        lock(&self.woken).push(id.to_string());
    }
}

/// A node named `name` on database `url`, its directory's tasks running.
async fn node(url: &str, name: &str) -> (Arc<FakeHost>, Arc<PgDirectory>) {
    let pool = PgPool::connect(url).await.unwrap();
    let directory = Arc::new(PgDirectory::new(pool, name));
    let host = Arc::new(FakeHost {
        name: name.into(),
        ..FakeHost::default()
    });
    directory.spawn(host.clone(), None);
    (host, directory)
}

/// Waits up to 10 s for `condition`.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn pg_a_view_published_by_the_owner_is_served_by_the_other_node() {
    let Some(database) =
        fresh_database("pg_a_view_published_by_the_owner_is_served_by_the_other_node").await
    else {
        return;
    };
    let url = database.url();
    let (a, a_directory) = node(url, "node-a").await;
    let (b, b_directory) = node(url, "node-b").await;
    // Both nodes know the tenant (announced); only A runs it.
    a.views.insert(TenantView::starting(
        "acme",
        "https://x/webhooks/personio/k".into(),
    ));
    b.views.insert(TenantView::starting(
        "acme",
        "https://x/webhooks/personio/k".into(),
    ));
    lock(&a.running).insert("acme".into());
    a.views.update("acme", |view| {
        view.state = TenantState::Live;
        view.employees = 42;
    });
    eventually("B serves A's live view", || {
        b.views
            .view("acme")
            .is_some_and(|view| view.state == TenantState::Live && view.employees == 42)
    })
    .await;
    // A later change follows, and B never publishes its own stale view over it.
    a.views
        .update("acme", |view| view.state = TenantState::Degraded);
    eventually("B serves A's degraded view", || {
        b.views
            .view("acme")
            .is_some_and(|view| view.state == TenantState::Degraded)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(a.views.view("acme").unwrap().state, TenantState::Degraded);
    assert_eq!(b.views.view("acme").unwrap().employees, 42);
    // Its actor down (failed), the tenant is still A's: its view keeps being
    // published, and its commands still find A.
    lock(&a.running).remove("acme");
    a.views
        .update("acme", |view| view.state = TenantState::Failed);
    eventually("B serves A's failed view", || {
        b.views
            .view("acme")
            .is_some_and(|view| view.state == TenantState::Failed)
    })
    .await;
    let outcome = Directory::Postgres(b_directory.clone())
        .run(
            b.as_ref(),
            "acme",
            Command::Restart,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(outcome, Ok(serde_json::json!({ "ran_on": "node-a" })));
    // Once B publishes the tenant (it runs it now), A no longer claims it.
    lock(&b.running).insert("acme".into());
    b.views
        .update("acme", |view| view.state = TenantState::Live);
    eventually("A serves B's view", || {
        a.views
            .view("acme")
            .is_some_and(|view| view.state == TenantState::Live)
    })
    .await;
    assert!(!a_directory.owns(a.as_ref(), "acme"));
    lock(&b.running).remove("acme");
    // A tenant B does not know (no spec announced there) is not mirrored into it.
    a.views.insert(TenantView::starting("other", String::new()));
    lock(&a.running).insert("other".into());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(b.views.view("other").is_none());
}

#[tokio::test]
async fn pg_a_command_posted_on_a_non_owner_runs_on_the_owner() {
    let Some(database) =
        fresh_database("pg_a_command_posted_on_a_non_owner_runs_on_the_owner").await
    else {
        return;
    };
    let url = database.url();
    let (a, _) = node(url, "node-a").await;
    let (b, b_directory) = node(url, "node-b").await;
    lock(&a.running).insert("acme".into());
    // Let A's listener start before B posts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let directory = Directory::Postgres(b_directory.clone());
    assert!(!directory.runs_here(b.as_ref(), "acme"));
    let outcome = directory
        .run(
            b.as_ref(),
            "acme",
            Command::Sync { confirm: true },
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(outcome, Ok(serde_json::json!({ "ran_on": "node-a" })));
    assert_eq!(
        *lock(&a.executed),
        [("acme".to_string(), Command::Sync { confirm: true })]
    );
    assert!(lock(&b.executed).is_empty());
    // A tenant no node runs: a clear 503-kind answer in time, and the command is
    // closed so it never runs late.
    let started = tokio::time::Instant::now();
    let outcome = directory
        .run(
            b.as_ref(),
            "ghost",
            Command::Restart,
            Duration::from_millis(500),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(outcome.kind, FailureKind::Unavailable);
    assert!(
        outcome.message.contains("no node runs tenant `ghost`"),
        "{outcome:?}"
    );
    let open: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tenant_commands WHERE done_at IS NULL")
            .fetch_one(b_directory.pool())
            .await
            .unwrap();
    assert_eq!(open, 0);
}

#[tokio::test]
async fn pg_a_spec_written_anywhere_is_announced_on_every_node() {
    let Some(database) =
        fresh_database("pg_a_spec_written_anywhere_is_announced_on_every_node").await
    else {
        return;
    };
    let url = database.url();
    let (a, a_directory) = node(url, "node-a").await;
    let (b, _) = node(url, "node-b").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pool = a_directory.pool();
    sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2)")
        .bind(b"tenant\0zeta".to_vec())
        .bind(b"{}".to_vec())
        .execute(pool)
        .await
        .unwrap();
    // Other meta keys say nothing.
    sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2)")
        .bind(b"invite\0abc".to_vec())
        .bind(b"{}".to_vec())
        .execute(pool)
        .await
        .unwrap();
    for host in [&a, &b] {
        eventually("both nodes hear of zeta", || {
            lock(&host.specs_changed).contains(&"zeta".to_string())
        })
        .await;
    }
    // A deleted spec takes its published view with it.
    a_directory
        .publish(&[TenantView::starting("zeta", String::new())])
        .await
        .unwrap();
    assert!(a_directory.published("zeta").await.unwrap().is_some());
    sqlx::query("DELETE FROM meta WHERE key = $1")
        .bind(b"tenant\0zeta".to_vec())
        .execute(pool)
        .await
        .unwrap();
    assert!(a_directory.published("zeta").await.unwrap().is_none());
    eventually("B hears of the delete", || {
        lock(&b.specs_changed)
            .iter()
            .filter(|id| *id == "zeta")
            .count()
            == 2
    })
    .await;
    assert!(lock(&b.specs_changed).iter().all(|id| id == "zeta"));
}

#[tokio::test]
async fn pg_an_inbox_notification_wakes_only_the_node_that_runs_the_tenant() {
    let Some(database) =
        fresh_database("pg_an_inbox_notification_wakes_only_the_node_that_runs_the_tenant").await
    else {
        return;
    };
    let url = database.url();
    let (a, a_directory) = node(url, "node-a").await;
    let (b, b_directory) = node(url, "node-b").await;
    lock(&a.running).insert("acme".into());
    a_directory.inbox_notified(a.as_ref(), "acme");
    b_directory.inbox_notified(b.as_ref(), "acme");
    assert_eq!(*lock(&a.woken), ["acme"]);
    assert!(lock(&b.woken).is_empty());
}
