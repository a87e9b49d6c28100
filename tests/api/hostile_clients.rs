//! Issue 13, "Hostile and careless clients": the front door faces the internet, so a
//! client that stalls holds nothing for long, SIGTERM ends the process within 10 s
//! whatever the clients do, the public `/metrics` names no tenant, and a tenant's
//! inbox is capped.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::child::ServiceProcess;
use crate::helpers::{
    TOKEN, TestApp, set_subscriptions_status, spawn_app, spawn_app_configured, tenant_spec,
    webhook_body, webhook_payload,
};
use crate::webhooks::live_tenant;
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig};
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};

/// Contract §6: "SIGTERM: exit 0 within 10 s".
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// Opens a connection and sends `bytes` (then nothing more).
async fn stall(addr: std::net::SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    stream.flush().await.expect("flush");
    stream
}

/// Whatever the server sent before closing the connection (`None` if it stays open
/// for another 10 s).
async fn leftover(stream: &mut TcpStream) -> Option<String> {
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes)).await;
    read.ok()
        .map(|_| String::from_utf8_lossy(&bytes).into_owned())
}

/// The simulators, the binary (started with `env`) and a live tenant `door`.
struct Door {
    personio: PersonioSim,
    _learnamp: LearnAmpSim,
    service: ServiceProcess,
    /// The webhook URL, its path and the token.
    url: String,
    path: String,
    token: String,
}

async fn open_door(env: &[(&str, &str)]) -> Door {
    let personio = PersonioSim::start(PersonioSimConfig {
        employees: 6,
        seed: 131,
        ..PersonioSimConfig::default()
    })
    .await
    .expect("personio sim");
    let learnamp = LearnAmpSim::start(LearnAmpSimConfig::default())
        .await
        .expect("learn amp sim");
    let service = ServiceProcess::start(env).await;
    let spec = tenant_spec("door", &personio, &learnamp, json!({}));
    let (status, body) = service
        .admin(reqwest::Method::POST, "/admin/tenants", Some(&spec))
        .await;
    assert_eq!(status, 201, "{body}");
    let view = service
        .wait_view(
            "door",
            "the initial sync",
            Duration::from_secs(40),
            |view| view["state"] == "live" && view["last_sync"]["finished_at"].is_string(),
        )
        .await;
    let url = view["webhook_url"]
        .as_str()
        .expect("webhook_url")
        .to_string();
    let path = url
        .trim_start_matches(&format!("http://{}", service.addr()))
        .to_string();
    let token = personio.webhooks()[0].token.clone().expect("token");
    Door {
        personio,
        _learnamp: learnamp,
        service,
        url,
        path,
        token: token.expose().to_string(),
    }
}

/// Four clients that stop halfway: an idle socket, half a header, half a webhook body
/// (right key and token), half an admin body (right admin token).
async fn stall_four(door: &Door) -> Vec<(&'static str, TcpStream)> {
    let addr = door.service.addr();
    let (path, token) = (&door.path, &door.token);
    vec![
        ("idle socket", stall(addr, b"").await),
        (
            "half a header",
            stall(addr, format!("POST {path} HTTP/1.1\r\nhost: x\r\nauthoriz").as_bytes()).await,
        ),
        (
            "half a webhook body",
            stall(
                addr,
                format!(
                    "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: {token}\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{{\"company_id\":\"1\",\"event_name\":"
                )
                .as_bytes(),
            )
            .await,
        ),
        (
            "half an admin body",
            stall(
                addr,
                format!(
                    "POST /admin/tenants HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{{\"id\":\"half\","
                )
                .as_bytes(),
            )
            .await,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_neither_block_the_door_nor_delay_sigterm() {
    let mut door = open_door(&[("RUST_LOG", "info")]).await;
    let mut stalled = stall_four(&door).await;
    let (url, token) = (door.url.clone(), door.token.clone());
    let (personio, service) = (&door.personio, &mut door.service);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(service.data_dir())
            .expect("data dir")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "the data dir is private");
    }

    let addr = service.addr();
    // The door still answers beside them.
    let health = service
        .http()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(health.status().as_u16(), 200);
    let delivery = webhook_body(
        &personio.company().company_id,
        "person.updated",
        json!({"id": "9900001"}),
    );
    let stored = service
        .http()
        .post(&url)
        .header("authorization", &token)
        .json(&delivery)
        .send()
        .await
        .expect("a delivery beside the stalled clients");
    assert_eq!(stored.status().as_u16(), 200);

    let signalled = Instant::now();
    service.terminate();
    let status = loop {
        if let Some(status) = service.exited() {
            break status;
        }
        assert!(
            signalled.elapsed() < EXIT_WITHIN,
            "still running {EXIT_WITHIN:?} after SIGTERM:\n{}",
            service.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = signalled.elapsed();
    println!("SIGTERM with four stalled clients: exit {status} after {took:?}");
    assert_eq!(status.code(), Some(0), "{status}:\n{}", service.log_tail());
    for (what, stream) in &mut stalled {
        let answer = leftover(stream).await.unwrap_or_else(|| {
            panic!("{what}: the connection outlived the process");
        });
        assert!(
            !answer.starts_with("HTTP/1.1 2"),
            "{what} was cut off, never answered 2xx: {answer}"
        );
    }
}

/// The same four clients against short timeouts (set through the environment, as an
/// operator could): each is closed or answered 408 within seconds, none is stored, and
/// the service goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_are_dropped_after_their_timeouts() {
    let door = open_door(&[
        ("RUST_LOG", "info"),
        ("PERSONIO_SYNC_SERVER_HEADER_READ_TIMEOUT_SECS", "1"),
        ("PERSONIO_SYNC_SERVER_REQUEST_TIMEOUT_SECS", "1"),
    ])
    .await;
    let mut stalled = stall_four(&door).await;
    for (what, stream) in &mut stalled {
        let answer = leftover(stream)
            .await
            .unwrap_or_else(|| panic!("{what}: still open 10 s later"));
        if what.starts_with("half a") && what.ends_with("body") {
            assert!(answer.starts_with("HTTP/1.1 408"), "{what}: {answer}");
        } else {
            assert_eq!(answer, "", "{what}: closed without an answer");
        }
    }
    let health = door
        .service
        .http()
        .get(format!("http://{}/healthz", door.service.addr()))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(health.status().as_u16(), 200);
    let view = door.service.view("door").await;
    assert_eq!(view["pending_events"], 0, "nothing stored: {view}");
    let (status, _) = door
        .service
        .admin(reqwest::Method::GET, "/admin/tenants/half", None)
        .await;
    assert_eq!(status, 404, "no tenant from half a body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_metrics_name_no_tenant_while_the_private_listener_has_them() {
    let app = spawn_app(6, 132).await;
    let tenant = "metrics-tenant-42";
    let view = live_tenant(&app, tenant, json!({})).await;
    let url = view["webhook_url"].as_str().expect("webhook_url");
    let token = app.personio.webhooks()[0].token.clone().expect("token");
    let delivery = webhook_body(
        &app.personio.company().company_id,
        "person.updated",
        json!({"id": "9900001"}),
    );
    let response = app
        .http
        .post(url)
        .header("authorization", token.expose())
        .json(&delivery)
        .send()
        .await
        .expect("delivery");
    assert_eq!(response.status().as_u16(), 200);
    app.wait_for(tenant, Duration::from_secs(30), |view| {
        view["live"]["events_applied"].as_u64() >= Some(1)
    })
    .await;

    let text = |url: String| {
        let http = app.http.clone();
        async move {
            let response = http.get(url).send().await.expect("metrics answer");
            assert_eq!(response.status().as_u16(), 200);
            response.text().await.expect("metrics text")
        }
    };
    let public = text(format!("{}/metrics", app.base)).await;
    assert!(!public.contains(tenant), "{public}");
    assert!(!public.contains("tenant_id"), "{public}");
    assert!(
        public.contains("personio_sync_tenants{state=\"live\"} 1"),
        "{public}"
    );
    for histogram in [
        "personio_sync_webhook_to_learnamp_seconds_count ",
        "personio_sync_api_call_seconds_count{system=\"learnamp\",endpoint=\"/v1/users\"} ",
        "personio_sync_api_call_seconds_bucket{system=\"personio\",endpoint=\"list_employees\",le=\"+Inf\"} ",
    ] {
        let count = public
            .lines()
            .find_map(|line| line.strip_prefix(histogram))
            .and_then(|value| value.parse::<f64>().ok());
        assert!(count >= Some(1.0), "{histogram}: {public}");
    }
    let private = text(format!("{}/metrics", app.metrics_base)).await;
    assert!(
        private.contains(&format!(
            "personio_sync_full_sync_seconds_count{{tenant_id=\"{tenant}\"}} 1"
        )),
        "{private}"
    );
    assert!(
        private.contains(&format!(
            "personio_sync_inbox_depth{{tenant_id=\"{tenant}\"}}"
        )),
        "{private}"
    );
    assert!(
        private.contains(&format!(
            "personio_sync_events_applied_total{{tenant_id=\"{tenant}\"}}"
        )),
        "{private}"
    );
    // The private listener serves metrics only.
    let admin = app
        .http
        .get(format!("{}/admin/tenants", app.metrics_base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(admin.status().as_u16(), 404);
}

/// Posts one delivery about `person_id`; status, `Retry-After` and body.
async fn deliver(
    app: &TestApp,
    url: &str,
    token: &str,
    person_id: &str,
) -> (u16, Option<String>, Value) {
    let body = webhook_body(
        &app.personio.company().company_id,
        "employment.updated",
        webhook_payload("employment.updated", person_id),
    );
    let response = app
        .http
        .post(url)
        .header("authorization", token)
        .json(&body)
        .send()
        .await
        .expect("delivery answered");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_inbox_answers_503_with_retry_after_until_it_drains() {
    const CAP: u64 = 3;
    let app = spawn_app_configured(
        PersonioSimConfig {
            employees: 8,
            seed: 133,
            ..PersonioSimConfig::default()
        },
        |config| config.storage.inbox_cap = CAP,
    )
    .await;
    let view = live_tenant(&app, "capped", json!({})).await;
    set_subscriptions_status(&app.personio, "DISABLED").await;
    let url = view["webhook_url"].as_str().expect("webhook_url");
    let token = app.personio.webhooks()[0].token.clone().expect("token");
    let people: Vec<String> = app
        .personio
        .employees()
        .into_iter()
        .map(|person| person.employee.id)
        .collect();

    // Personio is down: stored events wait in the inbox.
    app.personio.knobs.set_outage(true);
    for person in &people[..CAP as usize] {
        let (status, _, body) = deliver(&app, url, token.expose(), person).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, retry_after, body) = deliver(&app, url, token.expose(), &people[3]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "inbox_full", "{body}");
    assert!(
        retry_after.is_some_and(|seconds| seconds.parse::<u64>().is_ok_and(|s| s > 0)),
        "Retry-After in seconds"
    );
    assert_eq!(app.view("capped").await["pending_events"], CAP);

    // Personio is back: the inbox drains and deliveries are taken again.
    app.personio.knobs.set_outage(false);
    app.wait_for("capped", Duration::from_secs(90), |view| {
        view["pending_events"] == 0
    })
    .await;
    let (status, _, body) = deliver(&app, url, token.expose(), &people[3]).await;
    assert_eq!(status, 200, "{body}");
}
