//! Issue 3: the webhook front door, the subscription, and live updates.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_in};
use crate::in_both_modes;
use personio_sync_sim::learnamp::SimUserStatus;
use personio_sync_sim::person::EmployeeStatus;

/// Creates a tenant and waits for its initial sync.
pub async fn live_tenant(app: &TestApp, id: &str, settings: Value) -> Value {
    let (status, body) = app.create_tenant(&app.spec(id, settings)).await;
    assert_eq!(status, 201, "{body}");
    app.wait_for_sync(id, None).await
}

/// Waits until `done` holds for the Learn Amp simulator.
pub async fn wait_learnamp(app: &TestApp, what: &str, done: impl Fn(&TestApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(app) {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

in_both_modes! {
async fn personio_changes_reach_learnamp_through_webhooks(mode: LaMode) {
    let app = spawn_app_in(mode, 60, 21).await;
    live_tenant(&app, "live", json!({})).await;
    let hooks = app.personio.webhooks();
    assert_eq!(hooks.len(), 1, "exactly one subscription");
    let hook = &hooks[0];
    assert_eq!(format!("{:?}", hook.status), "Enabled");
    assert_eq!(hook.enabled_events.len(), 8);

    let mut people = app.personio.employees();
    people.sort_by_key(|p| p.employee.id.parse::<u64>().unwrap());
    let active: Vec<_> = people
        .iter()
        .filter(|p| p.employee.status == Some(EmployeeStatus::Active))
        .cloned()
        .collect();

    // A promotion.
    let mut promoted = active[3].clone();
    promoted.employee.position = Some("Chief Webhook Officer".into());
    let promoted_id = promoted.employee.id.clone();
    app.personio.upsert_employee(promoted);
    wait_learnamp(&app, "job title updated", |app| {
        app.learnamp
            .user_by_external_id(&promoted_id)
            .and_then(|u| u.job_title)
            .as_deref()
            == Some("Chief Webhook Officer")
    })
    .await;

    // A new joiner.
    let mut hire = active[4].clone();
    hire.employee.id = "99001".into();
    hire.employee.email = Some("new.joiner@example.test".into());
    hire.employee.first_name = Some("New".into());
    app.personio.upsert_employee(hire);
    wait_learnamp(&app, "new joiner created", |app| {
        app.learnamp.user_by_external_id("99001").is_some()
    })
    .await;

    // A changed email keeps the same user.
    let before = app.learnamp.user_by_external_id("99001").unwrap().id;
    let mut renamed = app.personio.employee("99001").unwrap();
    renamed.employee.email = Some("renamed.joiner@example.test".into());
    app.personio.upsert_employee(renamed);
    wait_learnamp(&app, "email changed", |app| {
        app.learnamp
            .user_by_external_id("99001")
            .is_some_and(|u| u.email == "renamed.joiner@example.test")
    })
    .await;
    assert_eq!(
        app.learnamp.user_by_external_id("99001").unwrap().id,
        before
    );

    // A leaver, then a rehire.
    let leaver_id = active[5].employee.id.clone();
    let mut leaver = active[5].clone();
    leaver.employee.status = Some(EmployeeStatus::Inactive);
    app.personio.upsert_employee(leaver.clone());
    wait_learnamp(&app, "leaver deactivated", |app| {
        app.learnamp
            .user_by_external_id(&leaver_id)
            .is_some_and(|u| u.status == SimUserStatus::Deactivated)
    })
    .await;
    leaver.employee.status = Some(EmployeeStatus::Active);
    app.personio.upsert_employee(leaver);
    wait_learnamp(&app, "rehire reactivated", |app| {
        app.learnamp
            .user_by_external_id(&leaver_id)
            .is_some_and(|u| u.status != SimUserStatus::Deactivated)
    })
    .await;

    // A deletion deactivates, never deletes.
    let deleted_id = active[6].employee.id.clone();
    assert!(app.personio.delete_employee(&deleted_id));
    wait_learnamp(&app, "deleted person deactivated", |app| {
        app.learnamp
            .user_by_external_id(&deleted_id)
            .is_some_and(|u| u.status == SimUserStatus::Deactivated)
    })
    .await;

    let view = app
        .wait_for("live", Duration::from_secs(10), |view| {
            view["pending_events"] == 0
        })
        .await;
    assert!(
        view["live"]["events_applied"].as_u64().unwrap() >= 6,
        "{view}"
    );
    assert!(view["live"]["last_event_at"].is_string(), "{view}");
    crate::helpers::assert_learnamp_matches_personio(&app);

    // Deleting the tenant removes its subscription.
    let (status, _) = app.admin("DELETE", "/admin/tenants/live", None).await;
    assert_eq!(status, 204);
    assert!(app.personio.webhooks().is_empty(), "subscription removed");
}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_exactly_one_subscription_and_repairs_a_disabled_one() {
    let app = spawn_app(10, 2).await;
    live_tenant(&app, "subs", json!({})).await;
    assert_eq!(app.personio.webhooks().len(), 1);
    for _ in 0..2 {
        let (status, _) = app.admin("POST", "/admin/tenants/subs/restart", None).await;
        assert_eq!(status, 202);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let view = app.view("subs").await;
        if view["state"] == "live" && app.personio.webhooks().len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends a raw delivery to `url`.
pub async fn post_raw(
    app: &TestApp,
    url: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = app
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.header("authorization", token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_door_answers_every_case_of_the_contract() {
    let app = spawn_app(5, 4).await;
    let view = live_tenant(&app, "door", json!({})).await;
    let url = view["webhook_url"].as_str().unwrap().to_string();
    let token = app.personio.webhooks()[0].token.clone().unwrap();
    let token = token.expose();
    let good = json!({"company_id": "1", "event_name": "person.updated", "occurred_at": "2026-01-01T00:00:00Z", "payload": {"id": "1001"}, "meta": {}});
    let bytes = |value: &Value| serde_json::to_vec(value).unwrap();

    let unknown = url.rsplit_once('/').unwrap().0.to_string() + "/ffffffffffffffffffffffffffffffff";
    assert_eq!(
        post_raw(&app, &unknown, Some(token), bytes(&good)).await.0,
        404
    );
    assert_eq!(post_raw(&app, &url, None, bytes(&good)).await.0, 401);
    assert_eq!(
        post_raw(&app, &url, Some("Bearer wrong"), bytes(&good))
            .await
            .0,
        401
    );
    let (status, body) = post_raw(&app, &url, Some(token), b"{not json".to_vec()).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("JSON"), "{body}");
    for field in ["company_id", "event_name", "occurred_at", "payload"] {
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove(field);
        let (status, body) = post_raw(&app, &url, Some(token), bytes(&missing)).await;
        assert_eq!(status, 400, "{field}");
        assert!(body["message"].as_str().unwrap().contains(field), "{body}");
    }
    let mut wrong_type = good.clone();
    wrong_type["payload"] = json!("1001");
    assert_eq!(
        post_raw(&app, &url, Some(token), bytes(&wrong_type))
            .await
            .0,
        400
    );
    let mut huge = good.clone();
    huge["meta"] = json!({"padding": "x".repeat(70 * 1024)});
    assert_eq!(post_raw(&app, &url, Some(token), bytes(&huge)).await.0, 413);
    let before = app.view("door").await["live"]["events_applied"]
        .as_u64()
        .unwrap();
    let (status, _) = post_raw(&app, &url, Some(token), bytes(&good)).await;
    assert_eq!(status, 200);
    app.wait_for("door", Duration::from_secs(10), |view| {
        view["live"]["events_applied"].as_u64().unwrap() > before
    })
    .await;
}

/// The Personio simulator signs deliveries the way the service's verifier expects (the
/// two sides of the assumed contract in `personio::assumed`); another secret fails.
#[test]
fn the_simulator_signs_as_the_service_verifies() {
    use personio_sync::personio::assumed;
    use personio_sync_sim::personio::signing;
    assert_eq!(signing::TIMESTAMP_HEADER, assumed::TIMESTAMP_HEADER);
    assert_eq!(signing::SIGNATURE_HEADER, assumed::SIGNATURE_HEADER);
    let now = chrono::Utc::now().timestamp();
    let timestamp = now.to_string();
    let body = br#"{"event_name":"person.created","data":{"id":"2"}}"#;
    let signature = signing::sign(b"whsec-sim", now, body);
    let verify = |secret: &[u8]| {
        assumed::verify(
            secret,
            Some(timestamp.as_bytes()),
            Some(signature.as_bytes()),
            body,
            now,
        )
    };
    assert_eq!(verify(b"whsec-sim"), Ok(()));
    assert_eq!(verify(b"other"), Err(assumed::SignatureError::Mismatch));
}
