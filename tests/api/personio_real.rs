//! Issue 12, Personio half: the service against a simulator as strict as the reference
//! (short pages, foreign 404s, the per-IP v1 budget, webhook creation conflicts, https
//! webhook URLs, signed deliveries).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_learnamp_matches_personio, spawn_app_configured, spawn_app_with, webhook_body,
};
use crate::webhooks::wait_learnamp;
use personio_sync::personio::assumed;
use personio_sync_sim::learnamp::SimUserStatus;
use personio_sync_sim::personio::{DeliveryOutcome, PersonioSimConfig, ScriptedAnswer};
use reqwest::Method;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_404_on_one_employee_deactivates_nobody_and_keeps_the_event() {
    let app = spawn_app_with(PersonioSimConfig {
        employees: 30,
        seed: 4,
        ..PersonioSimConfig::default()
    })
    .await;
    let (status, body) = app.create_tenant(&app.spec("proxy", json!({}))).await;
    assert_eq!(status, 201, "{body}");
    let view = app.wait_for_sync("proxy", None).await;
    assert_eq!(view["state"], "live", "{view}");
    let person = app
        .personio
        .employees()
        .into_iter()
        .find(|p| !p.employee.is_inactive())
        .expect("an active employee");
    let id = person.employee.id.clone();
    let path = format!("/v1/company/employees/{id}");
    app.personio.script(ScriptedAnswer::html_not_found(&path));
    app.personio.emit_event("person.updated", json!({"id": id}));
    let view = app
        .wait_for("proxy", Duration::from_secs(20), |view| {
            view["state"] == "degraded" && view["pending_events"].as_u64() >= Some(1)
        })
        .await;
    let last_error = view["last_error"].as_str().unwrap_or_default();
    assert!(
        last_error.contains("404") && last_error.contains("base_url"),
        "{view}"
    );
    let answered_html = app
        .personio
        .log
        .all()
        .iter()
        .filter(|call| call.path == path && call.status == 404)
        .count();
    assert!(answered_html >= 1, "the employee read met the HTML 404");
    let user = app
        .learnamp
        .user_by_external_id(&id)
        .expect("the person's user");
    assert_ne!(
        user.status,
        SimUserStatus::Deactivated,
        "nobody deactivated"
    );
    assert!(
        app.learnamp
            .users()
            .iter()
            .all(|user| user.status != SimUserStatus::Deactivated
                || app
                    .personio
                    .employee(user.integration_external_id.as_deref().unwrap_or(""))
                    .is_some_and(|p| p.employee.is_inactive())),
        "no active person's user is deactivated"
    );

    // Once Personio answers again, the kept event is applied and the tenant recovers.
    app.personio.clear_scripts();
    let view = app
        .wait_for("proxy", Duration::from_secs(30), |view| {
            view["state"] == "live" && view["pending_events"] == 0
        })
        .await;
    assert!(view["live"]["events_applied"].as_u64() >= Some(1), "{view}");
    assert_ne!(
        app.learnamp.user_by_external_id(&id).unwrap().status,
        SimUserStatus::Deactivated
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_syncing_at_once_share_one_per_ip_v1_budget() {
    // Personio allows 30 v1 calls/s from our IP here; the service paces itself at 20/s.
    // Two tenants pacing 20/s each would reach 40/s and be refused; one shared pacer
    // keeps both together under the budget.
    let app = spawn_app_configured(
        PersonioSimConfig {
            employees: 300,
            seed: 8,
            v1_per_ip_per_minute: 1800.0,
            ..PersonioSimConfig::default()
        },
        |config| config.personio.v1_requests_per_minute = 1200,
    )
    .await;
    let started = std::time::Instant::now();
    for id in ["first", "second"] {
        let (status, body) = app.create_tenant(&app.spec(id, json!({}))).await;
        assert_eq!(status, 201, "{body}");
    }
    for id in ["first", "second"] {
        let view = app.wait_for_sync(id, None).await;
        assert_eq!(view["state"], "live", "{view}");
        assert_eq!(view["last_sync"]["failed"], 0, "{view}");
    }
    let elapsed = started.elapsed();
    let usage = app.personio.ip_usage();
    let local = &usage[&std::net::IpAddr::from([127, 0, 0, 1])];
    eprintln!(
        "two full syncs: {} v1 calls in {elapsed:?}, peak {}/s, {} refused by the per-IP limit",
        local.v1_requests, local.peak_per_second, local.v1_refused
    );
    assert_eq!(local.v1_refused, 0, "over the per-IP budget: {local:?}");
    // In any one second: the shared pacer releases at most its burst (20) plus 20 more
    // (arrival jitter allowed for); two pacers of 20/s reach about 80.
    assert!(
        local.peak_per_second <= 50,
        "more than one pacer's worth within one second: {local:?}"
    );
    assert!(local.v1_requests >= 120, "a real load: {local:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_409_on_webhook_creation_is_retried_once_then_degrades_the_tenant() {
    let app = spawn_app_with(PersonioSimConfig {
        employees: 10,
        seed: 2,
        ..PersonioSimConfig::default()
    })
    .await;
    let conflict = || {
        ScriptedAnswer::new(
            Method::POST,
            "/v2/webhooks",
            409,
            "application/problem+json",
            r#"{"personio_trace_id": "t-409", "errors": [{"title": "Conflict", "detail": "A webhook with this url already exists."}]}"#,
        )
    };
    // One 409, then Personio creates it: the retry after a fresh list succeeds.
    app.personio.script(conflict().times(1));
    let (status, body) = app.create_tenant(&app.spec("once", json!({}))).await;
    assert_eq!(status, 201, "{body}");
    let view = app.wait_for_sync("once", None).await;
    assert_eq!(view["state"], "live", "{view}");
    assert_eq!(app.personio.webhooks().len(), 1);

    // Every create answers 409: two attempts, each after a list, then `degraded`.
    app.personio.log.clear();
    app.personio.script(conflict());
    let (status, body) = app.create_tenant(&app.spec("stuck", json!({}))).await;
    assert_eq!(status, 201, "{body}");
    let view = app.wait_for_sync("stuck", None).await;
    assert_eq!(view["state"], "degraded", "{view}");
    let last_error = view["last_error"].as_str().unwrap_or_default();
    assert!(
        last_error.contains("409") && last_error.contains("restart the tenant"),
        "{view}"
    );
    let calls = |method: &str| {
        app.personio
            .log
            .all()
            .iter()
            .filter(|call| call.path == "/v2/webhooks" && call.method.as_str() == method)
            .count()
    };
    assert_eq!(calls("POST"), 2, "created once, retried once, no more");
    assert_eq!(calls("GET"), 2, "a fresh list before the retry");
    assert_eq!(
        view["last_sync"]["failed"], 0,
        "the sync itself ran: {view}"
    );

    // Once Personio accepts it, the next sync ensures it and the tenant is live.
    app.personio.clear_scripts();
    let previous = view["last_sync"]["finished_at"]
        .as_str()
        .map(str::to_string);
    let (status, _) = app.admin("POST", "/admin/tenants/stuck/sync", None).await;
    assert_eq!(status, 202);
    let view = app.wait_for_sync("stuck", previous.as_deref()).await;
    assert_eq!(view["state"], "live", "{view}");
    assert_eq!(app.personio.webhooks().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_webhook_url_refused_by_personio_shows_in_the_tenant_view() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe port");
        probe.local_addr().expect("probe addr").port()
    };
    let app = spawn_app_configured(
        PersonioSimConfig {
            employees: 10,
            seed: 3,
            ..PersonioSimConfig::default()
        },
        |config| {
            config.server.listen = format!("127.0.0.1:{port}");
            config.server.public_url = format!("http://sync.example.com:{port}");
        },
    )
    .await;
    let (status, body) = app.create_tenant(&app.spec("plain", json!({}))).await;
    assert_eq!(status, 201, "{body}");
    let view = app.wait_for_sync("plain", None).await;
    assert_eq!(view["state"], "degraded", "{view}");
    let last_error = view["last_error"].as_str().unwrap_or_default();
    assert!(
        last_error.contains("not https") && last_error.contains("server.public_url"),
        "{view}"
    );
    let key = view["webhook_url"]
        .as_str()
        .and_then(|url| url.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    assert!(
        !key.is_empty() && !last_error.contains(&key),
        "no webhook key in the error"
    );
    assert!(app.personio.webhooks().is_empty(), "nothing registered");
    let refused = app
        .personio
        .log
        .all()
        .iter()
        .filter(|call| call.path == "/v2/webhooks" && call.method.as_str() == "POST")
        .map(|call| call.status)
        .collect::<Vec<_>>();
    assert_eq!(refused, [422], "refused once, not retried");
    assert_eq!(
        view["last_sync"]["failed"], 0,
        "the sync itself ran: {view}"
    );
}

/// Posts `body` to `url` with the token and, when given, signature headers.
async fn post_signed(
    app: &TestApp,
    url: &str,
    token: &str,
    signature: Option<(i64, String)>,
    body: &[u8],
) -> (u16, Value) {
    let mut request = app
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("authorization", token)
        .body(body.to_vec());
    if let Some((timestamp, signature)) = signature {
        request = request
            .header(assumed::TIMESTAMP_HEADER, timestamp.to_string())
            .header(assumed::SIGNATURE_HEADER, signature);
    }
    let response = request.send().await.expect("delivery");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_deliveries_are_verified_when_the_tenant_has_a_signing_secret() {
    const SIGNING: &str = "whsec-9f2c41d0b7e3";
    let app = spawn_app_with(PersonioSimConfig {
        employees: 20,
        seed: 6,
        signing_secret: Some(SIGNING.to_string()),
        ..PersonioSimConfig::default()
    })
    .await;
    let mut spec = app.spec("signed", json!({}));
    spec["personio"]["webhook_signing_secret"] = json!(SIGNING);
    let (status, body) = app.create_tenant(&spec).await;
    assert_eq!(status, 201, "{body}");
    assert!(!body.to_string().contains(SIGNING), "never shown: {body}");
    let view = app.wait_for_sync("signed", None).await;
    assert_eq!(view["state"], "live", "{view}");
    assert!(!view.to_string().contains(SIGNING));

    // Personio's own signed delivery is accepted and applied.
    let mut person = app
        .personio
        .employees()
        .into_iter()
        .find(|p| !p.employee.is_inactive())
        .expect("an active employee");
    let id = person.employee.id.clone();
    person.employee.position = Some("Signed Position".into());
    app.personio.upsert_employee(person);
    wait_learnamp(&app, "signed update applied", |app| {
        app.learnamp
            .user_by_external_id(&id)
            .and_then(|user| user.job_title)
            .as_deref()
            == Some("Signed Position")
    })
    .await;
    assert!(
        app.personio
            .deliveries()
            .iter()
            .all(|d| d.outcome == DeliveryOutcome::Status(200)),
        "{:?}",
        app.personio.deliveries()
    );

    let url = view["webhook_url"]
        .as_str()
        .expect("webhook url")
        .to_string();
    let token = app.personio.webhooks()[0].token.clone().expect("token");
    let token = token.expose();
    let body = serde_json::to_vec(&webhook_body(
        &app.personio.company().company_id,
        "person.updated",
        json!({"id": id}),
    ))
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let good = |at: i64| Some((at, assumed::sign(SIGNING.as_bytes(), at, &body)));

    let (status, answer) = post_signed(&app, &url, token, None, &body).await;
    assert_eq!(status, 401, "unsigned refused: {answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("not signed"),
        "{answer}"
    );

    let forged = Some((now, assumed::sign(b"another secret", now, &body)));
    let (status, answer) = post_signed(&app, &url, token, forged, &body).await;
    assert_eq!(status, 401, "bad signature refused: {answer}");
    assert_eq!(answer["error"], "bad_signature");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{answer}"
    );

    let (status, answer) = post_signed(&app, &url, token, good(now - 400), &body).await;
    assert_eq!(status, 401, "stale timestamp refused: {answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("400 s away"),
        "{answer}"
    );

    let (status, answer) = post_signed(&app, &url, token, good(now + 400), &body).await;
    assert_eq!(status, 401, "future timestamp refused: {answer}");

    let (status, answer) = post_signed(&app, &url, "Bearer wrong", good(now), &body).await;
    assert_eq!(status, 401, "the token check stays: {answer}");
    assert_eq!(answer["error"], "unauthorized");

    let (status, answer) = post_signed(&app, &url, token, good(now), &body).await;
    assert_eq!(status, 200, "valid signature accepted: {answer}");
    assert!(!answer.to_string().contains(SIGNING));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_that_fails_transiently_is_retried_on_its_own() {
    let app = spawn_app_with(PersonioSimConfig {
        employees: 10,
        seed: 5,
        ..PersonioSimConfig::default()
    })
    .await;
    // Enough 503s to exhaust the client's retries twice (10 attempts each).
    app.personio.script(
        ScriptedAnswer::new(
            Method::GET,
            "/v2/webhooks",
            503,
            "application/problem+json",
            r#"{"personio_trace_id": "t-503", "errors": [{"title": "Service Unavailable", "detail": "Please try again later"}]}"#,
        )
        .times(20),
    );
    let (status, body) = app.create_tenant(&app.spec("later", json!({}))).await;
    assert_eq!(status, 201, "{body}");
    let view = app
        .wait_for("later", Duration::from_secs(60), |view| {
            view["state"] == "degraded"
                && view["last_error"]
                    .as_str()
                    .is_some_and(|error| error.contains("subscription not ensured"))
        })
        .await;
    assert!(app.personio.webhooks().is_empty(), "{view}");
    let view = app
        .wait_for("later", Duration::from_secs(60), |view| {
            view["state"] == "live"
        })
        .await;
    assert_eq!(view["last_error"], Value::Null, "{view}");
    assert_eq!(
        app.personio.webhooks().len(),
        1,
        "ensured without a new sync"
    );
    assert!(view["last_sync"]["finished_at"].is_string(), "{view}");
}
