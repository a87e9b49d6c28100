//! Issue 12, Personio half: the service against a simulator as strict as the reference
//! (short pages, foreign 404s, the per-IP v1 budget, webhook creation conflicts, https
//! webhook URLs, signed deliveries).

use serde_json::json;

use crate::helpers::{assert_learnamp_matches_personio, spawn_app_with};
use personio_sync::sim::personio::PersonioSimConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_reads_every_employee_when_pages_hold_37_rows() {
    let app = spawn_app_with(PersonioSimConfig {
        employees: 250,
        seed: 12,
        page_cap: Some(37),
        ..PersonioSimConfig::default()
    })
    .await;
    let (status, body) = app.create_tenant(&app.spec("capped", json!({}))).await;
    assert_eq!(status, 201, "{body}");
    let view = app.wait_for_sync("capped", None).await;
    assert_eq!(view["state"], "live", "{view}");
    assert_eq!(view["last_sync"]["failed"], 0, "{view}");
    assert_learnamp_matches_personio(&app);
    let pages: Vec<String> = app
        .personio
        .log
        .all()
        .into_iter()
        .filter(|call| call.path == "/v1/company/employees")
        .filter_map(|call| call.query)
        .collect();
    // 250 rows at 37 a page: 7 pages, offsets advancing by the rows served.
    assert_eq!(pages.len(), 7, "{pages:?}");
    assert!(
        pages.iter().all(|query| query.contains("limit=100")),
        "{pages:?}"
    );
    assert!(pages[1].contains("offset=37"), "{pages:?}");
    let sync = &view["last_sync"];
    let read: u64 = ["created", "updated", "unchanged", "deactivated"]
        .iter()
        .map(|key| sync[key].as_u64().unwrap_or_default())
        .sum();
    assert_eq!(read, 250, "every employee read and planned: {view}");
}
