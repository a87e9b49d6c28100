//! Issue 17: the service with `storage.backend = "postgres"` (a fresh database per
//! test; skipped without `PERSONIO_SYNC_TEST_PG_URL`, failing instead with `CI` set).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::child::ServiceProcess;
use crate::helpers::{
    assert_learnamp_matches_personio, postgres, spawn_app_configured, tenant_spec, use_postgres,
};
use crate::webhooks::{live_tenant, wait_learnamp};
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig};
use personio_sync_sim::person::EmployeeStatus;
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};

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

/// The last id `id_seq` handed out, 0 before the first (a fresh sequence reports its
/// start value as `last_value` until `nextval` is first called).
const ISSUED_IDS: &str = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM id_seq";

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
    let ids_before: i64 = sqlx::query_scalar(ISSUED_IDS)
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
    let ids_after: i64 = sqlx::query_scalar(ISSUED_IDS)
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

/// The real binary on PostgreSQL, configured through the environment (the URL without
/// its password, the password in `PERSONIO_SYNC_PG_PASSWORD`, never logged): after a
/// SIGKILL the new process finds the tenant and the records it committed, and
/// reconciles without creating anyone twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_from_postgres_and_keeps_its_data_across_a_kill() {
    let test = "the_binary_serves_from_postgres_and_keeps_its_data_across_a_kill";
    let Some(database) = postgres::fresh_database(test).await else {
        return;
    };
    // postgres://user:password@host/db -> postgres://user@host/db + password
    let url = database.url();
    let scheme_end = url.find("://").unwrap() + 3;
    let at = url.find('@').unwrap();
    let (user, password) = url[scheme_end..at].split_once(':').unwrap();
    let bare = format!("{}{user}{}", &url[..scheme_end], &url[at..]);

    let personio = PersonioSim::start(PersonioSimConfig {
        employees: 12,
        seed: 1717,
        ..PersonioSimConfig::default()
    })
    .await
    .unwrap();
    let learnamp = LearnAmpSim::start(LearnAmpSimConfig::default())
        .await
        .unwrap();
    let mut service = ServiceProcess::start(&[
        ("RUST_LOG", "info"),
        ("PERSONIO_SYNC_STORAGE_BACKEND", "postgres"),
        ("PERSONIO_SYNC_STORAGE_POSTGRES_URL", &bare),
        ("PERSONIO_SYNC_PG_PASSWORD", password),
    ])
    .await;
    let spec = tenant_spec("pgbin", &personio, &learnamp, json!({}));
    let (status, body) = service
        .admin(reqwest::Method::POST, "/admin/tenants", Some(&spec))
        .await;
    assert_eq!(status, 201, "{body}");
    let synced = |view: &serde_json::Value| {
        view["state"] == "live"
            && view["pending_events"] == 0
            && view["last_sync"]["finished_at"].is_string()
    };
    service
        .wait_view("pgbin", "the initial sync", Duration::from_secs(60), synced)
        .await;
    let users = learnamp.users().len();
    assert!(users >= 8, "{users} users");

    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let records: i64 = sqlx::query_scalar("SELECT count(*) FROM tenant_kv WHERE tenant = 'pgbin'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(records > 0, "the tenant's rows are in PostgreSQL");
    pool.close().await;

    service.kill_and_restart().await;
    service
        .wait_view(
            "pgbin",
            "live again after the kill",
            Duration::from_secs(60),
            synced,
        )
        .await;
    assert_eq!(learnamp.users().len(), users, "nobody created twice");
    assert!(
        service.log_lines(password).is_empty(),
        "the password reached the log"
    );
    assert!(!service.log_lines("connected to PostgreSQL").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_tenant_runs_on_the_node_holding_its_lease_released_at_shutdown() {
    let Some(database) = postgres::fresh_database(
        "on_postgres_a_tenant_runs_on_the_node_holding_its_lease_released_at_shutdown",
    )
    .await
    else {
        return;
    };
    let app = spawn_app_configured(
        PersonioSimConfig {
            employees: 10,
            seed: 18,
            ..PersonioSimConfig::default()
        },
        |config| use_postgres(config, &database),
    )
    .await;
    live_tenant(&app, "leased", json!({})).await;
    let pool = sqlx::PgPool::connect(database.url()).await.unwrap();
    // One node: it took the new tenant's lease (epoch 1) and runs it.
    let (owner, epoch): (Option<String>, i64) =
        sqlx::query_as("SELECT owner, epoch FROM leases WHERE tenant = 'leased'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(owner.is_some());
    assert_eq!(epoch, 1);
    wait_for_count(&pool, "SELECT count(*) FROM nodes WHERE NOT draining", 1).await;
    // A clean stop releases the lease at once and deregisters the node.
    drop(app);
    wait_for_count(
        &pool,
        "SELECT count(*) FROM leases WHERE tenant = 'leased' AND owner IS NULL AND epoch = 1",
        1,
    )
    .await;
    wait_for_count(&pool, "SELECT count(*) FROM nodes", 0).await;
}
