use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;

use std::time::Instant;

use super::*;
use crate::api_client::token::renewal_delay;

/// When a token with `expires_in` seconds of life, received at `now`, is renewed.
fn renew_at(now: Instant, expires_in: Option<u64>) -> Instant {
    now + renewal_delay(Duration::from_secs(expires_in.unwrap_or(3_600)))
}

/// One request the fake server received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    fn bearer(&self) -> &str {
        self.header("authorization")
            .strip_prefix("Bearer ")
            .unwrap_or("")
    }

    fn query_value(&self, key: &str) -> Option<String> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&self.query)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// The fake server's answer.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    delay: Duration,
}

impl Reply {
    fn json(status: u16, value: Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: value.to_string().into_bytes(),
            delay: Duration::ZERO,
        }
    }

    fn problem(status: u16, trace_id: &str) -> Self {
        let mut reply = Self::json(
            status,
            json!({"personio_trace_id": trace_id, "errors": [{"title": "Bad Gateway", "detail": "Please try again later"}]}),
        );
        reply.content_type = "application/problem+json";
        reply
    }

    fn v1_error(status: u16, message: &str) -> Self {
        Self::json(
            status,
            json!({"success": false, "error": {"code": status, "message": message}}),
        )
    }

    fn empty(status: u16) -> Self {
        Self {
            status,
            content_type: "text/plain",
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }
}

type Script = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;
type Log = Arc<StdMutex<Vec<Seen>>>;

struct Fake {
    base: String,
    log: Log,
}

impl Fake {
    fn seen(&self) -> Vec<Seen> {
        self.log.lock().expect("log").clone()
    }

    fn count(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path == path).count()
    }
}

async fn answer(State((script, log)): State<(Script, Log)>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    log.lock().expect("log").push(seen.clone());
    let reply = script(&seen);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type);
    if seen.path.starts_with("/v1/") && (200..300).contains(&reply.status) {
        // Successful v1 answers carry a token back (reference §2.1); this one differs
        // from the token presented, to show the client does not switch to it.
        response = response.header("authorization", format!("Bearer {RETURNED_TOKEN}"));
    }
    response.body(Body::from(reply.body)).expect("response")
}

/// The token every successful v1 answer of the fake carries back.
const RETURNED_TOKEN: &str = "papi-returned-in-header";

/// A fake Personio on 127.0.0.1:0. The token endpoint hands out `tok-1`, `tok-2`, …
/// (with `expires_in`) and insists on the app id and the form fields; every other
/// request goes to `script`.
async fn spawn_with_expiry(
    expires_in: u64,
    script: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> Fake {
    let tokens = AtomicUsize::new(0);
    let script: Script = Arc::new(move |seen: &Seen| {
        if seen.header("x-personio-app-id") != "PERSONIO_SYNC" {
            return Reply::v1_error(400, "missing app id");
        }
        if seen.path == "/v2/auth/token" {
            let form: Vec<(String, String)> =
                serde_urlencoded::from_str(&seen.body).unwrap_or_default();
            let expected = [
                ("grant_type", "client_credentials"),
                ("client_id", "cid"),
                ("client_secret", "s3cret"),
            ];
            let matches = form.len() == 3
                && expected
                    .iter()
                    .all(|(k, v)| form.iter().any(|(fk, fv)| fk == k && fv == v));
            if !matches {
                return Reply::json(400, json!({"error": "invalid_request"}));
            }
            let n = tokens.fetch_add(1, Ordering::SeqCst) + 1;
            return Reply::json(
                200,
                json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": expires_in}),
            );
        }
        script(seen)
    });
    let log: Log = Arc::default();
    let app = Router::new()
        .fallback(answer)
        .with_state((script, log.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Fake {
        base: format!("http://{addr}"),
        log,
    }
}

async fn spawn(script: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Fake {
    spawn_with_expiry(86_400, script).await
}

fn config(base: &str) -> PersonioConfig {
    PersonioConfig {
        base_url: format!("{base}/"),
        client_id: "cid".into(),
        client_secret: Secret::new("s3cret"),
        app_id: "PERSONIO_SYNC".into(),
    }
}

fn client(fake: &Fake) -> PersonioClient {
    PersonioClient::new(
        config(&fake.base),
        reqwest::Client::new(),
        RetryPolicy::fast(),
    )
}

fn employee(id: usize) -> Value {
    json!({"type": "Employee", "attributes": {
        "id": {"label": "ID", "value": id, "type": "integer", "universal_id": "id"},
        "email": {"label": "Email", "value": format!("e{id}@example.com"), "type": "standard", "universal_id": "email"}
    }})
}

fn page(ids: impl Iterator<Item = usize>, total: usize) -> Value {
    let data: Vec<Value> = ids.map(employee).collect();
    json!({"success": true, "metadata": {"total_elements": total, "current_page": 0, "total_pages": 1}, "data": data})
}

/// Serves `total` employees with honest offset paging.
fn paged(seen: &Seen, total: usize) -> Reply {
    let offset: usize = seen
        .query_value("offset")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let limit: usize = seen
        .query_value("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let end = (offset + limit).min(total);
    Reply::json(200, page((offset.min(end)..end).map(|i| i + 1), total))
}

fn spec() -> WebhookSpec {
    WebhookSpec {
        url: "https://sync.example.com/webhooks/personio/key".into(),
        description: "LMS sync".into(),
        status: "ENABLED".into(),
        auth_type: "TOKEN".into(),
        token: Secret::new("Bearer hook-token"),
        enabled_events: vec!["person.created".into(), "person.updated".into()],
    }
}

fn webhook_json(id: &str) -> Value {
    json!({"id": id, "url": "https://sync.example.com/webhooks/personio/key", "description": "LMS sync",
           "status": "ENABLED", "auth_type": "TOKEN", "token": "Bearer hook-token",
           "enabled_events": ["person.created", "person.updated"]})
}

#[tokio::test]
async fn retries_503_twice_then_succeeds() {
    let calls = AtomicUsize::new(0);
    let fake = spawn(move |seen| {
        if calls.fetch_add(1, Ordering::SeqCst) < 2 {
            Reply::problem(503, "trace-503")
        } else {
            paged(seen, 3)
        }
    })
    .await;
    let client = client(&fake);
    let employees = client.list_employees().await.unwrap();
    assert_eq!(employees.len(), 3);
    assert_eq!(employees[2].email.as_deref(), Some("e3@example.com"));
    assert_eq!(fake.count("/v1/company/employees"), 3);
    assert_eq!(client.requests_made(), 4, "one token + three attempts");
    let retries = crate::metrics::render(&[])
        .lines()
        .find(|line| {
            line.starts_with(
                "personio_sync_api_retries_total{system=\"personio\",endpoint=\"list_employees\"}",
            )
        })
        .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok());
    assert!(
        retries.is_some_and(|count| count >= 2.0),
        "retries counted under the endpoint: {retries:?}"
    );
}

#[tokio::test]
async fn a_401_fetches_one_fresh_token_and_retries_once() {
    let fake = spawn(|seen| {
        if seen.bearer() == "tok-1" {
            Reply::problem(401, "trace-401")
        } else {
            Reply::json(
                200,
                json!({"_data": [webhook_json("w1")], "_meta": {"links": {}}}),
            )
        }
    })
    .await;
    let client = client(&fake);
    let hooks = client.list_webhooks().await.unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(fake.count("/v2/auth/token"), 2);
    assert_eq!(fake.count("/v2/webhooks"), 2);
    // The fresh token is cached.
    client.list_webhooks().await.unwrap();
    assert_eq!(fake.count("/v2/auth/token"), 2);
}

#[tokio::test]
async fn a_persistent_401_is_a_credentials_error_after_one_refresh() {
    let fake = spawn(|_| Reply::problem(401, "t")).await;
    let err = client(&fake).list_webhooks().await.unwrap_err();
    assert!(matches!(err, PersonioError::Unauthorized { .. }), "{err:?}");
    assert!(err.is_credentials());
    assert_eq!(fake.count("/v2/auth/token"), 2);
    assert_eq!(fake.count("/v2/webhooks"), 2);
}

#[tokio::test]
async fn a_v1_expired_token_403_is_refreshed() {
    let fake = spawn(|seen| {
        if seen.bearer() == "tok-1" {
            Reply::v1_error(403, "Provided authorization is not valid")
        } else {
            paged(seen, 2)
        }
    })
    .await;
    let employees = client(&fake).list_employees().await.unwrap();
    assert_eq!(employees.len(), 2);
    assert_eq!(fake.count("/v2/auth/token"), 2);
}

#[tokio::test]
async fn a_v2_403_is_forbidden_without_refresh() {
    let fake = spawn(|_| {
        Reply::json(
            403,
            json!({"errors": [{"title": "Insufficient access scope"}]}),
        )
    })
    .await;
    let err = client(&fake).list_webhooks().await.unwrap_err();
    assert_eq!(
        err,
        PersonioError::Forbidden {
            message: "Insufficient access scope".into()
        }
    );
    assert_eq!(fake.count("/v2/auth/token"), 1);
}

#[tokio::test]
async fn pages_through_250_employees_100_at_a_time() {
    let fake = spawn(|seen| paged(seen, 250)).await;
    let employees = client(&fake).list_employees().await.unwrap();
    assert_eq!(employees.len(), 250);
    let ids: HashSet<&str> = employees.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), 250);
    let pages: Vec<Seen> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path == "/v1/company/employees")
        .collect();
    let offsets: Vec<String> = pages
        .iter()
        .filter_map(|s| s.query_value("offset"))
        .collect();
    assert_eq!(offsets, ["0", "100", "200"]);
    assert!(
        pages
            .iter()
            .all(|s| s.query_value("limit").as_deref() == Some("100"))
    );
}

#[tokio::test]
async fn exact_multiple_of_the_page_size_stops_on_the_total() {
    let fake = spawn(|seen| paged(seen, 200)).await;
    assert_eq!(client(&fake).list_employees().await.unwrap().len(), 200);
    assert_eq!(fake.count("/v1/company/employees"), 2);
}

#[tokio::test]
async fn the_token_carried_back_by_v1_answers_is_not_switched_to() {
    // Reference §2.1: tokens are stable for 24 h; single-use tokens returned in the
    // `Authorization` response header are legacy and "rotation is no longer
    // required". The cached token stays in use; the returned one is never sent.
    let fake = spawn(|seen| paged(seen, 150)).await;
    let client = client(&fake);
    assert_eq!(client.list_employees().await.unwrap().len(), 150);
    client.readable_attributes().await.ok();
    let calls: Vec<Seen> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/v1/"))
        .collect();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|s| s.bearer() == "tok-1"), "{calls:?}");
    assert_eq!(fake.count("/v2/auth/token"), 1);
    assert!(!format!("{client:?}").contains(RETURNED_TOKEN));
}

#[tokio::test]
async fn short_pages_do_not_end_the_list() {
    // The server serves at most 37 rows whatever `limit` says.
    let fake = spawn(|seen| {
        let offset: usize = seen
            .query_value("offset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let end = (offset + 37).min(250);
        Reply::json(200, page((offset.min(end)..end).map(|i| i + 1), 250))
    })
    .await;
    let employees = client(&fake).list_employees().await.unwrap();
    assert_eq!(employees.len(), 250);
    let offsets: Vec<String> = fake
        .seen()
        .iter()
        .filter(|s| s.path == "/v1/company/employees")
        .filter_map(|s| s.query_value("offset"))
        .collect();
    assert_eq!(
        offsets,
        ["0", "37", "74", "111", "148", "185", "222"],
        "record offsets advance by the rows served"
    );
}

#[tokio::test]
async fn without_a_total_the_list_ends_at_an_empty_page() {
    let fake = spawn(|seen| {
        let offset: usize = seen
            .query_value("offset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let end = (offset + 30).min(70);
        let data: Vec<Value> = (offset.min(end)..end).map(|i| employee(i + 1)).collect();
        Reply::json(200, json!({"success": true, "data": data}))
    })
    .await;
    assert_eq!(client(&fake).list_employees().await.unwrap().len(), 70);
    assert_eq!(fake.count("/v1/company/employees"), 4);
}

#[tokio::test]
async fn a_page_that_never_advances_is_an_error_not_a_hang() {
    let fake = spawn(|_| Reply::json(200, page(1..=100, 1_000))).await;
    let outcome = tokio::time::timeout(Duration::from_secs(10), client(&fake).list_employees())
        .await
        .expect("list_employees must not loop");
    assert!(
        matches!(outcome, Err(PersonioError::Decode(_))),
        "{outcome:?}"
    );
    assert_eq!(fake.count("/v1/company/employees"), 2);
}

#[tokio::test]
async fn duplicates_across_pages_are_dropped() {
    // The second page overlaps the first by one (a record shifted between calls).
    let fake = spawn(|seen| match seen.query_value("offset").as_deref() {
        Some("0") => Reply::json(200, page(1..=100, 150)),
        _ => Reply::json(200, page(100..=150, 150)),
    })
    .await;
    let employees = client(&fake).list_employees().await.unwrap();
    assert_eq!(employees.len(), 150);
}

#[tokio::test]
async fn every_call_identifies_itself_and_token_form_has_no_scope() {
    let fake = spawn(|seen| match seen.path.as_str() {
        "/v1/company/employees/attributes" => Reply::json(
            200,
            json!({"success": true, "data": [{"key": "email", "label": "Email", "type": "standard"}]}),
        ),
        path if path.contains("profile-picture") => Reply {
            status: 200,
            content_type: "image/png",
            body: vec![0x89, b'P', b'N', b'G'],
            delay: Duration::ZERO,
        },
        _ => Reply::v1_error(404, "Es ist ein Problem aufgetreten"),
    })
    .await;
    let client = client(&fake);
    let attributes = client.readable_attributes().await.unwrap();
    assert_eq!(attributes[0].key, "email");
    let picture = client.profile_picture("4711", 256).await.unwrap();
    assert_eq!(picture.as_deref(), Some(&[0x89, b'P', b'N', b'G'][..]));
    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|s| s.header("x-personio-app-id") == "PERSONIO_SYNC")
    );
    assert!(!seen[0].body.contains("scope"));
    assert_eq!(seen[0].method, "POST");
    assert!(
        seen[0]
            .header("content-type")
            .starts_with("application/x-www-form-urlencoded")
    );
    assert_eq!(seen[1].header("accept"), "application/json");
    assert_eq!(seen[1].bearer(), "tok-1");
    assert_eq!(
        seen[2].path,
        "/v1/company/employees/4711/profile-picture/256"
    );
    assert_eq!(seen[2].header("accept"), "image/png, image/jpeg");
}

#[tokio::test]
async fn concurrent_calls_share_one_token_request() {
    let fake = spawn(|_| Reply::json(200, json!({"success": true, "data": []}))).await;
    let client = client(&fake);
    let calls = (0..8).map(|_| {
        let client = client.clone();
        async move { client.readable_attributes().await }
    });
    for outcome in futures::future::join_all(calls).await {
        assert!(outcome.unwrap().is_empty());
    }
    assert_eq!(fake.count("/v2/auth/token"), 1);
}

#[tokio::test]
async fn an_expiring_token_is_renewed() {
    let fake = spawn_with_expiry(0, |_| {
        Reply::json(200, json!({"success": true, "data": []}))
    })
    .await;
    let client = client(&fake);
    client.readable_attributes().await.unwrap();
    client.readable_attributes().await.unwrap();
    assert_eq!(fake.count("/v2/auth/token"), 2);
    assert!(renew_at(Instant::now(), Some(86_400)) > Instant::now() + Duration::from_secs(86_000));
    assert!(renew_at(Instant::now(), Some(86_400)) < Instant::now() + Duration::from_secs(86_341));
}

#[tokio::test]
async fn token_refusal_is_unauthorized_and_never_shows_the_secret() {
    let fake = spawn(|_| Reply::empty(200)).await;
    let mut config = config(&fake.base);
    config.client_secret = Secret::new("wrong-secret");
    // The fake answers invalid_request to a wrong form; answer like Personio instead.
    let personio = spawn_raw(|seen| {
        let secret = serde_urlencoded::from_str::<Vec<(String, String)>>(&seen.body)
            .unwrap_or_default()
            .into_iter()
            .find(|(k, _)| k == "client_secret")
            .map(|(_, v)| v)
            .unwrap_or_default();
        Reply::json(
            400,
            json!({"error": "unauthorized_client", "error_description": format!("bad secret {secret}"), "trace_id": "t-9"}),
        )
    })
    .await;
    config.base_url = personio.base.clone();
    let client = PersonioClient::new(config, reqwest::Client::new(), RetryPolicy::fast());
    let err = client.list_employees().await.unwrap_err();
    let text = format!("{err} {err:?} {client:?}");
    assert!(err.is_credentials(), "{err:?}");
    assert!(text.contains("unauthorized_client"), "{text}");
    assert!(!text.contains("wrong-secret"), "{text}");
    assert_eq!(personio.count("/v2/auth/token"), 1, "no retry on a refusal");
    assert_eq!(fake.seen().len(), 0);
}

/// A fake without the token logic (for token endpoint tests).
async fn spawn_raw(script: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Fake {
    let script: Script = Arc::new(script);
    let log: Log = Arc::default();
    let app = Router::new()
        .fallback(answer)
        .with_state((script, log.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Fake {
        base: format!("http://{addr}"),
        log,
    }
}

#[tokio::test]
async fn not_found_is_none_where_documented() {
    let fake = spawn(|seen| match seen.path.as_str() {
        "/v1/company/employees/7" => {
            Reply::json(200, json!({"success": true, "data": employee(7)}))
        }
        "/v2/org-units/401" => {
            assert_eq!(seen.query_value("type").as_deref(), Some("department"));
            assert_eq!(
                seen.query_value("include_parent_chain").as_deref(),
                Some("true")
            );
            Reply::json(
                200,
                json!({"id": 401, "name": "Support", "parent_id": "400"}),
            )
        }
        path if path.starts_with("/v2/") => {
            Reply::json(404, json!({"errors": [{"title": "Resource not found"}]}))
        }
        _ => Reply::v1_error(404, "Etwas ist schiefgelaufen"),
    })
    .await;
    let client = client(&fake);
    assert_eq!(client.get_employee("7").await.unwrap().unwrap().id, "7");
    assert_eq!(client.get_employee("8").await.unwrap(), None);
    assert_eq!(client.profile_picture("8", 128).await.unwrap(), None);
    let unit = client
        .get_org_unit("401", "department")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unit.parent_id.as_deref(), Some("400"));
    assert_eq!(client.get_org_unit("9", "team").await.unwrap(), None);
    let err = client.get_employee("..").await.unwrap_err();
    assert!(matches!(err, PersonioError::InvalidInput(_)));
    client.get_employee("a/b").await.unwrap();
    assert!(
        fake.seen()
            .iter()
            .any(|s| s.path == "/v1/company/employees/a%2Fb")
    );
}

#[tokio::test]
async fn a_404_without_personios_body_is_never_not_found() {
    let fake = spawn(|seen| match seen.path.as_str() {
        "/v1/company/employees/1" => Reply {
            status: 404,
            content_type: "text/html",
            body: b"<html><body><h1>404 Not Found</h1></body></html>".to_vec(),
            delay: Duration::ZERO,
        },
        "/v1/company/employees/2" => Reply::json(
            404,
            json!({"errors": [{"title": "Requested resource not found"}]}),
        ),
        "/v1/company/employees/3" => Reply::empty(404),
        _ => Reply {
            status: 404,
            content_type: "text/html",
            body: b"<html>nginx</html>".to_vec(),
            delay: Duration::ZERO,
        },
    })
    .await;
    let client = client(&fake);
    for id in ["1", "2", "3"] {
        let err = client.get_employee(id).await.unwrap_err();
        assert!(
            matches!(err, PersonioError::ForeignNotFound { .. }),
            "{id}: {err:?}"
        );
        assert!(err.is_transient(), "kept and retried, never a deletion");
    }
    assert!(client.get_org_unit("9", "team").await.is_err());
    assert!(client.delete_webhook("w1").await.is_err());
    assert!(client.profile_picture("1", 64).await.is_err());
    assert_eq!(
        fake.count("/v1/company/employees/1"),
        1,
        "not retried at once"
    );
}

#[tokio::test]
async fn webhook_management_round_trip() {
    let fake = spawn(|seen| match (seen.method.as_str(), seen.path.as_str()) {
        ("GET", "/v2/webhooks") if seen.query_value("cursor").is_none() => {
            assert_eq!(seen.query_value("limit").as_deref(), Some("100"));
            Reply::json(200, json!({"_data": [webhook_json("w1")],
                "_meta": {"links": {"next": {"href": "https://api.personio.de/v2/webhooks?cursor=cur_2"}}}}))
        }
        ("GET", "/v2/webhooks") => Reply::json(200, json!({"_data": [webhook_json("w2")], "_meta": {"links": {}}})),
        ("POST", "/v2/webhooks") => {
            let body: Value = serde_json::from_str(&seen.body).unwrap_or_default();
            if body["url"] == "https://taken.example.com" {
                return Reply::json(409, json!({"personio_trace_id": "t-409", "errors": [{"title": "Conflict"}]}));
            }
            assert_eq!(body["token"], "Bearer hook-token");
            assert_eq!(body["status"], "ENABLED");
            assert_eq!(body["auth_type"], "TOKEN");
            assert_eq!(body["enabled_events"][1], "person.updated");
            assert!(seen.header("content-type").starts_with("application/json"));
            Reply::json(201, webhook_json("w3"))
        }
        ("PATCH", "/v2/webhooks/w3") => Reply::empty(204),
        ("DELETE", "/v2/webhooks/w3") => Reply::empty(204),
        _ => Reply::json(404, json!({"errors": [{"title": "Not found"}]})),
    })
    .await;
    let client = client(&fake);
    let hooks = client.list_webhooks().await.unwrap();
    assert_eq!(
        hooks.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        ["w1", "w2"]
    );
    let created = client.create_webhook(&spec()).await.unwrap();
    assert_eq!(created.id, "w3");
    assert_eq!(created.status.as_deref(), Some("ENABLED"));
    assert!(!format!("{created:?}").contains("hook-token"));
    let mut taken = spec();
    taken.url = "https://taken.example.com".into();
    let err = client.create_webhook(&taken).await.unwrap_err();
    assert!(matches!(err, PersonioError::Conflict { .. }), "{err:?}");
    assert_eq!(err.trace_id(), Some("t-409"));
    let updated = client.update_webhook("w3", &spec()).await.unwrap();
    assert_eq!(updated.id, "w3");
    client.delete_webhook("w3").await.unwrap();
    client.delete_webhook("gone").await.unwrap();
    assert_eq!(fake.count("/v2/webhooks"), 4);
}

#[tokio::test]
async fn a_repeating_cursor_aborts_the_listing() {
    let fake = spawn(|_| {
        Reply::json(
            200,
            json!({"_data": [webhook_json("w1")],
            "_meta": {"links": {"next": {"href": "/v2/webhooks?cursor=same"}}}}),
        )
    })
    .await;
    let outcome = tokio::time::timeout(Duration::from_secs(10), client(&fake).list_webhooks())
        .await
        .expect("must not loop");
    assert!(
        matches!(outcome, Err(PersonioError::Decode(_))),
        "{outcome:?}"
    );
    assert_eq!(fake.count("/v2/webhooks"), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let fake = spawn(|_| {
        Reply::json(422, json!({"personio_trace_id": "t-422", "errors": [{"title": "Unprocessable", "detail": "url must be https"}]}))
    })
    .await;
    let client = client(&fake);
    let err = client.create_webhook(&spec()).await.unwrap_err();
    assert_eq!(
        err,
        PersonioError::Api {
            status: 422,
            message: "Unprocessable: url must be https".into(),
            trace_id: Some("t-422".into())
        }
    );
    assert!(!err.is_transient());
    assert_eq!(fake.count("/v2/webhooks"), 1);
}

#[tokio::test]
async fn rate_limits_without_retry_after_are_retried() {
    let calls = AtomicUsize::new(0);
    let fake = spawn(move |seen| {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::empty(429)
        } else {
            paged(seen, 1)
        }
    })
    .await;
    let started = std::time::Instant::now();
    assert_eq!(client(&fake).list_employees().await.unwrap().len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "fast policy, no 1 s floor"
    );
    assert_eq!(fake.count("/v1/company/employees"), 2);
}

#[tokio::test]
async fn exhausted_5xx_keeps_the_trace_id() {
    let fake = spawn(|_| Reply::problem(502, "trace-502")).await;
    let policy = RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::fast()
    };
    let client = PersonioClient::new(config(&fake.base), reqwest::Client::new(), policy);
    let err = client.list_webhooks().await.unwrap_err();
    assert_eq!(
        err,
        PersonioError::Server {
            status: 502,
            trace_id: Some("trace-502".into())
        }
    );
    assert!(err.is_transient());
    assert_eq!(fake.count("/v2/webhooks"), 2);
}

#[tokio::test]
async fn a_501_is_not_retried() {
    let fake = spawn(|_| Reply::empty(501)).await;
    let err = client(&fake).list_webhooks().await.unwrap_err();
    assert!(matches!(err, PersonioError::Server { status: 501, .. }));
    assert_eq!(fake.count("/v2/webhooks"), 1);
}

#[tokio::test]
async fn timeouts_are_transient_transport_errors() {
    let fake = spawn(|_| {
        let mut reply = Reply::json(200, json!({"success": true, "data": []}));
        reply.delay = Duration::from_secs(3);
        reply
    })
    .await;
    let policy = RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::fast()
    };
    let client = PersonioClient::new(config(&fake.base), reqwest::Client::new(), policy)
        .with_request_timeout(Duration::from_millis(200));
    let err = client.readable_attributes().await.unwrap_err();
    assert!(matches!(err, PersonioError::Transport(_)), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(fake.count("/v1/company/employees/attributes"), 2);
}

#[tokio::test]
async fn unreachable_server_is_a_transport_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let policy = RetryPolicy {
        max_attempts: 2,
        ..RetryPolicy::fast()
    };
    let client = PersonioClient::new(config(&base), reqwest::Client::new(), policy);
    let err = client.list_employees().await.unwrap_err();
    assert!(matches!(err, PersonioError::Transport(_)), "{err:?}");
    assert_eq!(client.requests_made(), 2);
}

#[test]
fn debug_output_hides_the_secret() {
    let client = PersonioClient::new(
        config("http://127.0.0.1:1"),
        reqwest::Client::new(),
        RetryPolicy::fast(),
    );
    let text = format!("{client:?} {:?}", config("x"));
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn path_segments_are_encoded() {
    assert_eq!(path_segment("4711", "id").unwrap(), "4711");
    assert_eq!(path_segment("a b/c?", "id").unwrap(), "a%20b%2Fc%3F");
    assert!(path_segment("", "id").is_err());
    assert!(path_segment("..", "id").is_err());
}
