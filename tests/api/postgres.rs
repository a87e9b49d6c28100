//! Issue 17: the service with `storage.backend = "postgres"` (a fresh database per
//! test; skipped without `PERSONIO_SYNC_TEST_PG_URL`, failing instead with `CI` set).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{
    assert_learnamp_matches_personio, postgres, spawn_app_configured, use_postgres,
};
use crate::webhooks::{live_tenant, wait_learnamp};
use personio_sync_sim::person::EmployeeStatus;
use personio_sync_sim::personio::PersonioSimConfig;

/// Waits until `query` (one bigint) answers `expected`.
async fn wait_for_count(pool: &sqlx::PgPool, query: &str, expected: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let count: i64 = sqlx::query_scalar(query).fetch_one(pool).await.unwrap();
        if count == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{query}: {count}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_and_webhook_deliveries_run_on_postgres() {
    let Some(database) =
        postgres::fresh_database("a_full_sync_and_webhook_deliveries_run_on_postgres").await
    else {
        return;
    };
    let app = spawn_app_configured(
        PersonioSimConfig {
            employees: 40,
            seed: 17,
            ..PersonioSimConfig::default()
        },
        |config| use_postgres(config, &database),
    )
    .await;
    live_tenant(&app, "pg", json!({})).await;
    assert_learnamp_matches_personio(&app);
    let pool = sqlx::PgPool::connect(database.url()).await.unwrap();
    // The spec is in `meta`, the mapping in `tenant_kv` (committed by the flushes).
    wait_for_count(
        &pool,
        "SELECT count(*) FROM meta WHERE key = 'tenant\\000pg'::bytea",
        1,
    )
    .await;
    let linked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tenant_kv WHERE tenant = 'pg' AND substring(key FROM 1 FOR 4) = 'emp\\000'::bytea",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(linked >= 30, "{linked} employee records stored");

    // Webhook deliveries go through the PostgreSQL inbox and are removed once applied.
    let ids_before: i64 = sqlx::query_scalar("SELECT last_value FROM id_seq")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut people = app.personio.employees();
    people.sort_by_key(|p| p.employee.id.parse::<u64>().unwrap());
    let active: Vec<_> = people
        .into_iter()
        .filter(|p| p.employee.status == Some(EmployeeStatus::Active))
        .collect();
    let mut promoted = active[3].clone();
    promoted.employee.position = Some("Chief Storage Officer".into());
    let promoted_id = promoted.employee.id.clone();
    app.personio.upsert_employee(promoted);
    let mut hire = active[4].clone();
    hire.employee.id = "99017".into();
    hire.employee.email = Some("pg.joiner@example.test".into());
    app.personio.upsert_employee(hire);
    wait_learnamp(&app, "job title updated", |app| {
        app.learnamp
            .user_by_external_id(&promoted_id)
            .and_then(|u| u.job_title)
            .as_deref()
            == Some("Chief Storage Officer")
    })
    .await;
    wait_learnamp(&app, "new joiner created", |app| {
        app.learnamp.user_by_external_id("99017").is_some()
    })
    .await;
    let ids_after: i64 = sqlx::query_scalar("SELECT last_value FROM id_seq")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(ids_after > ids_before, "deliveries were numbered by id_seq");
    wait_for_count(&pool, "SELECT count(*) FROM inbox WHERE tenant = 'pg'", 0).await;
    wait_for_count(
        &pool,
        "SELECT count(*) FROM tenant_kv WHERE tenant = 'pg' AND key = 'emp\\00099017'::bytea",
        1,
    )
    .await;
    assert_learnamp_matches_personio(&app);
    drop(app);
    pool.close().await;
}
