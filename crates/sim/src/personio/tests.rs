//! End-to-end tests of the simulator over HTTP (reqwest against a started simulator).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

const APP_ID: &str = "PERSONIO_SYNC_TESTS";

async fn sim(employees: usize) -> PersonioSim {
    PersonioSim::start(PersonioSimConfig {
        employees,
        rate_limits: false,
        ..PersonioSimConfig::default()
    })
    .await
    .unwrap()
}

fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-personio-app-id", APP_ID.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn token(sim: &PersonioSim) -> String {
    let answer: Value = client()
        .post(format!("{}/v2/auth/token", sim.base_url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sim-client"),
            ("client_secret", "sim-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_string()
}

async fn get(sim: &PersonioSim, token: &str, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", sim.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn token_call(sim: &PersonioSim, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{}/v2/auth/token", sim.base_url))
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn token_flow_follows_the_oauth2_rules() {
    let sim = sim(5).await;
    let good = [
        ("grant_type", "client_credentials"),
        ("client_id", "sim-client"),
        ("client_secret", "sim-secret"),
    ];
    let (status, body) = token_call(&sim, &good).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["access_token"].as_str().unwrap().starts_with("papi-"));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86_400);
    let (_, again) = token_call(&sim, &good).await;
    assert_eq!(again["access_token"], body["access_token"]);

    let json_attempt = client()
        .post(format!("{}/v2/auth/token", sim.base_url))
        .json(&json!({"grant_type": "client_credentials", "client_id": "sim-client", "client_secret": "sim-secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_attempt.status(), StatusCode::BAD_REQUEST);
    let refusal: Value = json_attempt.json().await.unwrap();
    assert_eq!(refusal["error"], "invalid_request");
    assert!(refusal["trace_id"].is_string() && refusal["timestamp"].is_string());

    let wrong = [good[0], good[1], ("client_secret", "nope")];
    let (status, body) = token_call(&sim, &wrong).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"))
    );
    let unknown = [good[0], ("client_id", "who"), good[2]];
    assert_eq!(
        token_call(&sim, &unknown).await.1["error"],
        "invalid_client"
    );
    let (_, missing) = token_call(&sim, &good[1..]).await;
    assert_eq!(missing["meta"]["missing_parameters"], json!(["grant_type"]));
    let other = [("grant_type", "password"), good[1], good[2]];
    assert_eq!(
        token_call(&sim, &other).await.1["error"],
        "unsupported_grant_type"
    );
}

#[tokio::test]
async fn expired_and_missing_tokens_are_refused_per_family() {
    let sim = sim(5).await;
    let token = token(&sim).await;
    assert_eq!(
        get(&sim, &token, "/v1/company/employees").await.status(),
        200
    );
    let bare = client()
        .get(format!("{}/v1/company/employees", sim.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    let body: Value = bare.json().await.unwrap();
    assert_eq!(
        body,
        json!({"success": false, "error": {"code": 401, "message": "Authorization is not provided"}})
    );

    sim.set_token_ttl(Duration::ZERO);
    let v1 = get(&sim, &token, "/v1/company/employees").await;
    assert_eq!(v1.status(), StatusCode::FORBIDDEN);
    let v2 = get(&sim, &token, "/v2/webhooks").await;
    assert_eq!(v2.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(v2.headers()["content-type"], "application/problem+json");
    sim.set_token_ttl(Duration::from_secs(60));
    let fresh = self::token(&sim).await;
    assert_ne!(fresh, token);
    assert_eq!(get(&sim, &fresh, "/v2/webhooks").await.status(), 200);
}

#[tokio::test]
async fn v1_list_paginates_by_record_offset() {
    let sim = sim(230).await;
    let token = token(&sim).await;
    let page: Value = get(&sim, &token, "/v1/company/employees?limit=100&offset=200")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["metadata"],
        json!({"total_elements": 230, "current_page": 2, "total_pages": 3})
    );
    assert_eq!(
        (page["offset"].clone(), page["limit"].clone()),
        (json!(200), json!(100))
    );
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 30);
    assert_eq!(data[0]["attributes"]["id"]["value"], 1201);

    let default: Value = get(&sim, &token, "/v1/company/employees")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(default["data"].as_array().unwrap().len(), 50);
    let ids: Vec<u64> = default["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["attributes"]["id"]["value"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));

    let too_big = get(&sim, &token, "/v1/company/employees?limit=101").await;
    assert_eq!(too_big.status(), StatusCode::BAD_REQUEST);
    let body: Value = too_big.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "The limit must be between 1 and 100"
    );

    let email = sim.employee("1007").unwrap().employee.email.unwrap();
    let found: Value = get(
        &sim,
        &token,
        &format!("/v1/company/employees?email={email}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    assert_eq!(found["data"][0]["attributes"]["id"]["value"], 1007);

    let missing = get(&sim, &token, "/v1/company/employees/999999").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["message"], "Es ist ein Problem aufgetreten");
    assert_eq!(sim.calls_without_app_id(), 0);
}

#[tokio::test]
async fn whitelisting_omits_attributes_and_hides_pictures() {
    let sim = sim(40).await;
    let token = token(&sim).await;
    let with_picture = sim
        .employees()
        .into_iter()
        .find(|e| e.picture.is_some())
        .unwrap();
    let path = format!(
        "/v1/company/employees/{}/profile-picture/128",
        with_picture.employee.id
    );
    let picture = get(&sim, &token, &path).await;
    assert_eq!(picture.status(), 200);
    assert_eq!(picture.headers()["content-type"], "image/png");
    assert_eq!(
        picture.bytes().await.unwrap().to_vec(),
        with_picture.picture.clone().unwrap()
    );

    sim.set_readable_attributes(Some(vec!["first_name".into(), "email".into()]));
    let page: Value = get(&sim, &token, "/v1/company/employees?limit=3")
        .await
        .json()
        .await
        .unwrap();
    let keys: Vec<&String> = page["data"][0]["attributes"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["email", "first_name", "id"]);
    let attributes: Value = get(&sim, &token, "/v1/company/employees/attributes")
        .await
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = attributes["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["id", "first_name", "email"]);
    assert_eq!(
        get(&sim, &token, &path).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn org_units_need_a_type() {
    let sim = sim(3).await;
    let token = token(&sim).await;
    assert_eq!(
        get(&sim, &token, "/v2/org-units/281509").await.status(),
        400
    );
    let unit: Value = get(
        &sim,
        &token,
        "/v2/org-units/281509?type=department&include_parent_chain=true",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(unit["name"], "Infrastructure");
    assert_eq!(unit["parent_chain"], json!(["281503", "281500"]));
    assert_eq!(
        get(&sim, &token, "/v2/org-units/281509?type=team")
            .await
            .status(),
        404
    );
}

async fn create_webhook(sim: &PersonioSim, token: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/v2/webhooks", sim.base_url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn webhook_management_creates_lists_conflicts_and_deletes() {
    let sim = sim(3).await;
    let token = token(&sim).await;
    let body = json!({"url": "http://127.0.0.1:9/hook", "description": "sync",
        "token": "Bearer abc", "enabled_events": ["person.created", "person.updated"]});
    let created = create_webhook(&sim, &token, body.clone()).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let hook: Value = created.json().await.unwrap();
    assert_eq!(hook["status"], "DISABLED");
    assert_eq!(hook["auth_type"], "TOKEN");
    assert_eq!(
        create_webhook(&sim, &token, body).await.status(),
        StatusCode::CONFLICT
    );
    let invalid = create_webhook(
        &sim,
        &token,
        json!({"url": "http://x/y", "description": "d", "enabled_events": []}),
    )
    .await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let listed: Value = get(&sim, &token, "/v2/webhooks?enabled_events=person.updated")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["_data"].as_array().unwrap().len(), 1);
    assert!(listed["_meta"]["links"]["self"]["href"].is_string());
    let none: Value = get(&sim, &token, "/v2/webhooks?status=ENABLED")
        .await
        .json()
        .await
        .unwrap();
    assert!(none["_data"].as_array().unwrap().is_empty());
    assert_eq!(
        get(&sim, &token, "/v2/webhooks?limit=201").await.status(),
        400
    );

    let id = hook["id"].as_str().unwrap();
    let patched = client()
        .patch(format!("{}/v2/webhooks/{id}", sim.base_url))
        .bearer_auth(&token)
        .json(&json!({"status": "ENABLED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    assert_eq!(sim.webhooks()[0].status, WebhookStatus::Enabled);
    let deleted = client()
        .delete(format!("{}/v2/webhooks/{id}", sim.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(sim.webhooks().is_empty());
    assert_eq!(
        get(&sim, &token, &format!("/v2/webhooks/{id}"))
            .await
            .status(),
        404
    );
}

/// What the receiver saw: (authorization header, body).
type Seen = Arc<Mutex<Vec<(Option<String>, Value)>>>;

async fn receiver(fail_first: usize) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let state = (seen.clone(), Arc::new(Mutex::new(fail_first)));
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State((seen, failures)): axum::extract::State<(
                    Seen,
                    Arc<Mutex<usize>>,
                )>,
                 headers: HeaderMap,
                 body: axum::Json<Value>| async move {
                    let auth = headers
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_string());
                    seen.lock().unwrap().push((auth, body.0));
                    let mut failures = failures.lock().unwrap();
                    if *failures > 0 {
                        *failures -= 1;
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::OK
                    }
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

async fn wait_for(mut done: impl FnMut() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn deliveries_carry_the_token_verbatim_and_retry_after_503() {
    let sim = sim(3).await;
    let token = token(&sim).await;
    let (url, seen) = receiver(1).await;
    let created = create_webhook(
        &sim,
        &token,
        json!({"url": url, "description": "sync", "status": "ENABLED", "token": "Bearer s3cr3t",
            "enabled_events": ["person.updated", "employment.deleted", "person.deleted"]}),
    )
    .await;
    assert_eq!(created.status(), 201);

    let mut changed = sim.employee("1002").unwrap();
    changed.employee.first_name = Some("Renamed".into());
    sim.upsert_employee(changed);
    wait_for(|| seen.lock().unwrap().len() >= 2).await;
    let seen_now = seen.lock().unwrap().clone();
    assert_eq!(seen_now[0].0.as_deref(), Some("Bearer s3cr3t"));
    let body = &seen_now[1].1;
    assert_eq!(body["event_name"], "person.updated");
    assert_eq!(body["payload"], json!({"id": "1002"}));
    assert_eq!(body["company_id"], sim.company().company_id);
    assert!(body["occurred_at"].is_string() && body["meta"].is_object());
    let attempts: Vec<(u32, DeliveryOutcome)> = sim
        .deliveries()
        .into_iter()
        .map(|d| (d.attempt, d.outcome))
        .collect();
    assert_eq!(
        attempts,
        [
            (1, DeliveryOutcome::Status(503)),
            (2, DeliveryOutcome::Status(200))
        ]
    );
    assert_ne!(sim.employee("1002").unwrap().last_modified_at, "");

    assert!(sim.delete_employee("1003"));
    wait_for(|| seen.lock().unwrap().len() >= 4).await;
    let names: Vec<String> = seen.lock().unwrap()[2..]
        .iter()
        .map(|(_, body)| body["event_name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"employment.deleted".to_string()));
    assert!(!sim.delete_employee("1003"));
}

#[tokio::test]
async fn no_retry_on_4xx_and_disabled_hooks_get_nothing() {
    let sim = sim(2).await;
    let token = token(&sim).await;
    let created = create_webhook(
        &sim,
        &token,
        json!({"url": format!("{}/nowhere", sim.base_url), "description": "self", "status": "ENABLED",
            "token": "t", "enabled_events": ["employment.terminated"]}),
    )
    .await;
    assert_eq!(created.status(), 201);
    sim.emit_event(
        "employment.terminated",
        json!({"id": "x", "person_id": "1001"}),
    );
    sim.emit_event("person.created", json!({"id": "1001"}));
    wait_for(|| !sim.deliveries().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deliveries = sim.deliveries();
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0].outcome, DeliveryOutcome::Status(401));
}

#[tokio::test]
async fn rate_limits_answer_429_without_retry_after_and_app_id_is_counted() {
    let sim = PersonioSim::start(PersonioSimConfig::default())
        .await
        .unwrap();
    let token = token(&sim).await;
    let mut limited = None;
    for _ in 0..40 {
        let response = get(&sim, &token, "/v1/company/employees?limit=1").await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("no 429 within 40 calls");
    assert!(limited.headers().get("retry-after").is_none());
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(sim.calls_without_app_id(), 0);
    reqwest::get(format!("{}/v1/company/employees", sim.base_url))
        .await
        .unwrap();
    assert_eq!(sim.calls_without_app_id(), 1);
    assert!(sim.log.len() >= 3);
}

#[tokio::test]
async fn knobs_inject_failures_and_shutdown_stops_the_server() {
    let sim = sim(2).await;
    sim.knobs.set_outage(true);
    let response = client()
        .post(format!("{}/v2/auth/token", sim.base_url))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(sim.log.all()[0].injected);
    sim.knobs.set_outage(false);
    let base = sim.base_url.clone();
    drop(sim);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = reqwest::Client::new()
        .get(format!("{base}/v1/company/employees"))
        .send()
        .await;
    assert!(after.is_err());
}

#[tokio::test]
async fn capped_pages_and_the_token_carried_back_on_v1_success() {
    let sim = PersonioSim::start(PersonioSimConfig {
        employees: 100,
        rate_limits: false,
        page_cap: Some(37),
        ..PersonioSimConfig::default()
    })
    .await
    .unwrap();
    let token = token(&sim).await;
    let response = get(&sim, &token, "/v1/company/employees?limit=100&offset=74").await;
    assert_eq!(
        response.headers()["authorization"].to_str().unwrap(),
        format!("Bearer {token}")
    );
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 26);
    assert_eq!(page["metadata"]["total_elements"], 100);
    assert_eq!(page["limit"], 100);
    let first: Value = get(&sim, &token, "/v1/company/employees?limit=100")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["data"].as_array().unwrap().len(), 37);
    sim.set_page_cap(None);
    let full: Value = get(&sim, &token, "/v1/company/employees?limit=100")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(full["data"].as_array().unwrap().len(), 100);
    // Only successful v1 answers carry it: not an error, not v2.
    let missing = get(&sim, &token, "/v1/company/employees/999999").await;
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().get("authorization").is_none());
    let hooks = get(&sim, &token, "/v2/webhooks").await;
    assert_eq!(hooks.status(), 200);
    assert!(hooks.headers().get("authorization").is_none());
}

#[tokio::test]
async fn scripted_answers_replace_one_route_then_run_out() {
    let sim = sim(3).await;
    let token = token(&sim).await;
    sim.script(ScriptedAnswer::html_not_found("/v1/company/employees/1002").times(1));
    let scripted = get(&sim, &token, "/v1/company/employees/1002").await;
    assert_eq!(scripted.status(), 404);
    assert!(
        scripted.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        scripted
            .text()
            .await
            .unwrap()
            .contains("<h1>Not Found</h1>")
    );
    assert_eq!(
        get(&sim, &token, "/v1/company/employees/1002")
            .await
            .status(),
        200
    );
    sim.script(ScriptedAnswer::new(
        Method::POST,
        "/v2/webhooks",
        409,
        "application/problem+json",
        r#"{"errors": [{"title": "Conflict"}]}"#,
    ));
    let body = json!({"url": "https://sync.example/h", "description": "d", "token": "t",
        "enabled_events": ["person.created"]});
    assert_eq!(
        create_webhook(&sim, &token, body.clone()).await.status(),
        409
    );
    assert_eq!(
        create_webhook(&sim, &token, body.clone()).await.status(),
        409
    );
    sim.clear_scripts();
    assert_eq!(create_webhook(&sim, &token, body).await.status(), 201);
}

#[tokio::test]
async fn plain_http_webhook_urls_are_refused_unless_loopback() {
    let sim = sim(2).await;
    let token = token(&sim).await;
    let body = |url: &str| json!({"url": url, "description": "d", "token": "t", "enabled_events": ["person.created"]});
    let refused = create_webhook(&sim, &token, body("http://sync.example.com/hook")).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("https"),
        "{problem}"
    );
    for allowed in [
        "https://sync.example.com/hook",
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
    ] {
        let created = create_webhook(&sim, &token, body(allowed)).await;
        assert_eq!(created.status(), StatusCode::CREATED, "{allowed}");
    }
    let id = sim.webhooks()[0].id.clone();
    let patched = client()
        .patch(format!("{}/v2/webhooks/{id}", sim.base_url))
        .bearer_auth(&token)
        .json(&json!({"url": "http://10.0.0.8/hook"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn v1_calls_are_counted_and_limited_per_source_ip() {
    let sim = PersonioSim::start(PersonioSimConfig {
        employees: 2,
        v1_per_ip_per_minute: 60.0,
        ..PersonioSimConfig::default()
    })
    .await
    .unwrap();
    let token = token(&sim).await;
    let mut refused = 0;
    for _ in 0..6 {
        let status = get(&sim, &token, "/v1/company/employees/attributes")
            .await
            .status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    get(&sim, &token, "/v2/webhooks").await;
    let usage = sim.ip_usage();
    let local = &usage[&std::net::IpAddr::from([127, 0, 0, 1])];
    assert_eq!(local.v1_requests, 6, "v2 calls are not v1 calls");
    assert_eq!(local.v1_refused, refused);
    assert!(
        refused >= 4,
        "a burst of 60/60 = 1, then 1 per second: {refused}"
    );
    assert_eq!(local.peak_per_second, 6);
}

#[tokio::test]
async fn deliveries_are_signed_when_a_secret_is_set() {
    use super::signing as assumed;
    type Captured = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;
    let captured: Captured = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State(captured): axum::extract::State<Captured>,
                 headers: HeaderMap,
                 body: axum::body::Bytes| async move {
                    captured.lock().unwrap().push((headers, body.to_vec()));
                    axum::http::StatusCode::OK
                },
            ),
        )
        .with_state(captured.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sim = sim(3).await;
    let token = token(&sim).await;
    let created = create_webhook(
        &sim,
        &token,
        json!({"url": url, "description": "sync", "status": "ENABLED", "token": "Bearer t",
            "enabled_events": ["person.created"]}),
    )
    .await;
    assert_eq!(created.status(), 201);
    sim.emit_event("person.created", json!({"id": "1"}));
    wait_for(|| captured.lock().unwrap().len() == 1).await;
    sim.set_signing_secret(Some("whsec-sim"));
    sim.emit_event("person.created", json!({"id": "2"}));
    wait_for(|| captured.lock().unwrap().len() == 2).await;

    let seen = captured.lock().unwrap().clone();
    let (unsigned, _) = &seen[0];
    assert!(unsigned.get(assumed::SIGNATURE_HEADER).is_none());
    assert!(unsigned.get(assumed::TIMESTAMP_HEADER).is_none());
    let (headers, body) = &seen[1];
    let header = |name: &str| headers[name].to_str().unwrap().to_string();
    let signed_at: i64 = header(assumed::TIMESTAMP_HEADER).parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(now.abs_diff(signed_at) <= 300, "signed when sent");
    // The service's verifier accepts these headers: tests/api/webhooks.rs checks the
    // two sides of the assumed contract against each other.
    assert_eq!(
        header(assumed::SIGNATURE_HEADER),
        assumed::sign(b"whsec-sim", signed_at, body)
    );
    assert_eq!(
        headers["authorization"], "Bearer t",
        "the token still comes"
    );
    assert_ne!(
        header(assumed::SIGNATURE_HEADER),
        assumed::sign(b"other", signed_at, body)
    );
}
