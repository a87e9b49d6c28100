use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap as AxumHeaders, StatusCode as AxumStatus};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};

use super::super::InvitationOutcome;
use super::*;
use crate::api_client::token::renewal_delay;
use crate::domain::fields::UserFields;
use crate::domain::fields::{EXTERNAL_ID, FIRST_NAME};

/// Counters shared between a test and its fake server.
#[derive(Default)]
struct Seen {
    tokens: AtomicUsize,
    hits: AtomicUsize,
    bodies: Mutex<Vec<String>>,
    queries: Mutex<Vec<String>>,
}

/// Serves `routes` plus a token endpoint that hands out `t1`, `t2`, … on 127.0.0.1:0.
async fn serve(routes: Router, seen: Arc<Seen>) -> LearnAmpClient {
    let token_seen = seen.clone();
    let app = routes.route(
        "/oauth/token",
        post(move |body: String| {
            let seen = token_seen.clone();
            async move {
                let n = seen.tokens.fetch_add(1, Ordering::SeqCst) + 1;
                seen.bodies.lock().expect("lock").push(body);
                axum::Json(serde_json::json!({
                    "access_token": format!("t{n}"), "token_type": "Bearer",
                    "expires_in": 7200, "scope": "public", "created_at": 1_601_480_215
                }))
            }
        }),
    );
    let addr = serve_app(app).await;
    client_for(addr, RetryPolicy::fast())
}

/// Serves `app` on 127.0.0.1:0.
async fn serve_app(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    addr
}

/// A client for a server at `addr`.
fn client_for(addr: std::net::SocketAddr, retry: RetryPolicy) -> LearnAmpClient {
    let config = LearnAmpConfig {
        base_url: format!("http://{addr}/"),
        client_id: "cid".into(),
        client_secret: Secret::new("top-secret"),
        scopes: vec!["users:read".into(), "users:update".into()],
    };
    LearnAmpClient::new(config, reqwest::Client::new(), retry)
}

fn user_json(id: u64) -> serde_json::Value {
    serde_json::json!({"id": id, "email": format!("u{id}@example.com"), "firstName": "U"})
}

fn page_of(query: &str) -> u64 {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("page="))
        .and_then(|page| page.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn lists_all_pages_using_total_pages() {
    let seen = Arc::new(Seen::default());
    let server_seen = seen.clone();
    let routes = Router::new().route(
        "/v1/users",
        get(move |RawQuery(query): RawQuery| {
            let seen = server_seen.clone();
            async move {
                let query = query.unwrap_or_default();
                seen.queries.lock().expect("lock").push(query.clone());
                let page = page_of(&query);
                let users = vec![user_json(page * 10), user_json(page * 10 + 1)];
                (
                    [("Total-Pages", "3"), ("Total", "6"), ("Per-Page", "2")],
                    axum::Json(serde_json::json!({ "users": users })),
                )
            }
        }),
    );
    let client = serve(routes, seen.clone()).await;
    let filter = UserFilter {
        statuses: vec![super::super::UserStatus::Deactivated],
        ..UserFilter::default()
    };
    let users = client.list_users(&filter).await.expect("listed");
    let ids: Vec<u64> = users.iter().map(|u| u.id).collect();
    assert_eq!(ids, vec![10, 11, 20, 21, 30, 31]);
    assert_eq!(client.requests_made(), 4);
    let queries = seen.queries.lock().expect("lock").clone();
    assert_eq!(queries.len(), 3);
    assert!(queries[0].contains("expanded=true"));
    assert!(queries[0].contains("perPage=100"));
    assert!(queries[0].contains("filters%5Bstatus%5D%5B%5D=deactivated"));
    let token_body = seen.bodies.lock().expect("lock")[0].clone();
    assert!(token_body.contains("grant_type=client_credentials"));
    assert!(token_body.contains("scope=users%3Aread+users%3Aupdate"));
}

#[tokio::test]
async fn non_advancing_pages_are_caught() {
    let seen = Arc::new(Seen::default());
    let routes = Router::new()
        .route(
            "/v1/users",
            get(|| async {
                (
                    [("Total-Pages", "5")],
                    axum::Json(serde_json::json!({ "users": [user_json(1), user_json(2)] })),
                )
            }),
        )
        .route(
            "/v1/teams",
            get(|| async {
                axum::Json(serde_json::json!({ "teams": [{"id": 7, "name": "Support"}] }))
            }),
        );
    let client = serve(routes, seen).await;
    let error = client
        .list_users(&UserFilter::default())
        .await
        .expect_err("repeating pages must not loop");
    assert!(matches!(error, LearnAmpError::Decode(_)), "{error:?}");
    // Without Total-Pages, a repeated page ends the list.
    let teams = client.list_teams().await.expect("listed");
    assert_eq!(teams.len(), 1);
    assert_eq!(teams[0].name, "Support");
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let seen = Arc::new(Seen::default());
    let server_seen = seen.clone();
    let routes = Router::new().route(
        "/v1/users/{id}",
        get(move |Path(id): Path<u64>| {
            let seen = server_seen.clone();
            async move {
                if seen.hits.fetch_add(1, Ordering::SeqCst) < 2 {
                    return AxumStatus::SERVICE_UNAVAILABLE.into_response();
                }
                axum::Json(user_json(id)).into_response()
            }
        }),
    );
    let client = serve(routes, seen.clone()).await;
    let user = client.get_user(5).await.expect("retried").expect("found");
    assert_eq!(user.id, 5);
    assert_eq!(seen.hits.load(Ordering::SeqCst), 3);
    assert_eq!(seen.tokens.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_401_renews_the_token_once() {
    let seen = Arc::new(Seen::default());
    let routes = Router::new()
        .route(
            "/v1/users/{id}",
            get(|headers: AxumHeaders, Path(id): Path<u64>| async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                if auth == "Bearer t1" {
                    return (AxumStatus::UNAUTHORIZED, "{\"error\":\"expired\"}").into_response();
                }
                axum::Json(user_json(id)).into_response()
            }),
        )
        .route(
            "/v1/teams/{id}",
            put(|| async { (AxumStatus::UNAUTHORIZED, "{\"error\":\"nope\"}") }),
        );
    let client = serve(routes, seen.clone()).await;
    let user = client.get_user(9).await.expect("renewed").expect("found");
    assert_eq!(user.id, 9);
    assert_eq!(seen.tokens.load(Ordering::SeqCst), 2);
    // The renewed token is cached.
    client.get_user(9).await.expect("cached").expect("found");
    assert_eq!(seen.tokens.load(Ordering::SeqCst), 2);
    // A second 401 in a row is final.
    let error = client
        .update_team(1, &TeamFields::default())
        .await
        .expect_err("unauthorized");
    assert_eq!(
        error,
        LearnAmpError::Unauthorized {
            message: "nope".into()
        }
    );
    assert_eq!(seen.tokens.load(Ordering::SeqCst), 3);
    assert!(!format!("{error:?} {error}").contains("top-secret"));
}

#[tokio::test]
async fn concurrent_callers_share_one_token_fetch() {
    let seen = Arc::new(Seen::default());
    let routes = Router::new().route(
        "/v1/users/{id}",
        get(|Path(id): Path<u64>| async move { axum::Json(user_json(id)) }),
    );
    let client = serve(routes, seen.clone()).await;
    let calls = (1..=8).map(|id| {
        let client = client.clone();
        async move { client.get_user(id).await }
    });
    for result in futures::future::join_all(calls).await {
        assert!(result.expect("ok").is_some());
    }
    assert_eq!(seen.tokens.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn invitation_outcomes() {
    let seen = Arc::new(Seen::default());
    let routes = Router::new().route(
        "/v1/users/{id}/invitation",
        post(|Path(id): Path<u64>| async move {
            match id {
                1 => (
                    AxumStatus::CONFLICT,
                    "{\"error\": \"User has already confirmed\"}",
                )
                    .into_response(),
                2 => (AxumStatus::CONFLICT, "{\"error\": \"User is deactivated\"}").into_response(),
                3 => AxumStatus::NO_CONTENT.into_response(),
                _ => (AxumStatus::NOT_FOUND, "{\"error\": \"Not found\"}").into_response(),
            }
        }),
    );
    let client = serve(routes, seen).await;
    assert_eq!(
        client.send_invitation(1).await,
        Ok(InvitationOutcome::AlreadyConfirmed)
    );
    assert_eq!(
        client.send_invitation(2).await,
        Ok(InvitationOutcome::Deactivated)
    );
    assert_eq!(client.send_invitation(3).await, Ok(InvitationOutcome::Sent));
    assert_eq!(
        client.send_invitation(4).await,
        Err(LearnAmpError::NotFound)
    );
}

/// A fake account listing confirmed user 3 before deactivated user 7 (when both are
/// present and asked for), recording whom the invitation route was asked about.
async fn probe_with(deactivated: bool) -> (Option<bool>, Vec<u64>) {
    let invited: Arc<Mutex<Vec<u64>>> = Arc::default();
    let record = invited.clone();
    let routes = Router::new()
        .route(
            "/v1/users",
            get(move |RawQuery(query): RawQuery| async move {
                let query = query.unwrap_or_default();
                let mut users = Vec::new();
                if query.contains("=confirmed") {
                    users.push(serde_json::json!({"id": 3, "email": "u3@example.com"}));
                }
                if deactivated && query.contains("=deactivated") {
                    users.push(serde_json::json!({"id": 7, "email": "u7@example.com"}));
                }
                axum::Json(serde_json::json!({ "users": users }))
            }),
        )
        .route(
            "/v1/users/{id}/invitation",
            post(move |Path(id): Path<u64>| {
                let record = record.clone();
                async move {
                    record.lock().expect("lock").push(id);
                    (AxumStatus::CONFLICT, "{\"error\": \"User is deactivated\"}")
                }
            }),
        );
    let client = serve(routes, Arc::new(Seen::default())).await;
    let found = client.probe_invitation_route().await.expect("probe");
    let asked = invited.lock().expect("lock").clone();
    (found, asked)
}

#[tokio::test]
async fn the_invitation_probe_asks_about_a_deactivated_user_first() {
    assert_eq!(probe_with(true).await, (Some(true), vec![7]));
    assert_eq!(
        probe_with(false).await,
        (Some(true), vec![3]),
        "a confirmed user only when none is deactivated"
    );
}

#[tokio::test]
async fn create_skips_invitation_and_duplicates_are_taken() {
    let seen = Arc::new(Seen::default());
    let server_seen = seen.clone();
    let routes = Router::new().route(
        "/v1/users",
        post(move |headers: AxumHeaders, body: String| {
            let seen = server_seen.clone();
            async move {
                let form_typed = headers
                    .get("content-type")
                    .is_some_and(|v| v.as_bytes() == b"application/x-www-form-urlencoded");
                seen.bodies.lock().expect("lock").push(body.clone());
                if !form_typed {
                    return AxumStatus::UNSUPPORTED_MEDIA_TYPE.into_response();
                }
                if body.contains("integrationExternalId=dup") {
                    return (AxumStatus::BAD_REQUEST,
                        r#"{"error": "Validation failed: Integration external id has already been taken", "fullErrors": {"integrationExternalId": ["has already been taken"]}}"#)
                        .into_response();
                }
                (AxumStatus::CREATED, axum::Json(user_json(77))).into_response()
            }
        }),
    );
    let client = serve(routes, seen.clone()).await;
    let mut fields = UserFields::new();
    fields.insert(FIRST_NAME.into(), "Ada".into());
    fields.insert(EXTERNAL_ID.into(), "4711".into());
    let user = client
        .create_user(&fields, false)
        .await
        .expect("created")
        .user;
    assert_eq!(user.id, 77);
    let sent = seen
        .bodies
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        sent,
        "firstName=Ada&integrationExternalId=4711&skipInvitation=true"
    );

    fields.insert(EXTERNAL_ID.into(), "dup".into());
    let error = client
        .create_user(&fields, false)
        .await
        .expect_err("duplicate");
    assert!(error.is_taken("integrationExternalId"), "{error:?}");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn a_create_that_invites_sends_no_skip_invitation() {
    let seen = Arc::new(Seen::default());
    let server_seen = seen.clone();
    let routes = Router::new().route(
        "/v1/users",
        post(move |body: String| {
            let seen = server_seen.clone();
            async move {
                seen.bodies.lock().expect("lock").push(body);
                (AxumStatus::CREATED, axum::Json(user_json(5)))
            }
        }),
    );
    let client = serve(routes, seen.clone()).await;
    let mut fields = UserFields::new();
    fields.insert(FIRST_NAME.into(), "Ada".into());
    fields.insert("skipInvitation".into(), "true".into());
    client.create_user(&fields, true).await.expect("created");
    let sent = seen.bodies.lock().expect("lock").last().cloned();
    assert_eq!(sent.as_deref(), Some("firstName=Ada"));
}

#[tokio::test]
async fn missing_assumed_routes_are_told_from_unknown_users() {
    use super::super::Assumed;
    let seen = Arc::new(Seen::default());
    // A documented-only account: the show route exists, the assumed routes do not
    // (404 for user 3, who exists); user 4 does not exist; 405 and 501 for user 5, 6.
    let routes = Router::new()
        .route(
            "/v1/users/{id}",
            get(|Path(id): Path<u64>| async move {
                if id == 4 {
                    (AxumStatus::NOT_FOUND, "{\"error\": \"Not found\"}").into_response()
                } else {
                    axum::Json(user_json(id)).into_response()
                }
            }),
        )
        .route(
            "/v1/users/{id}/avatar",
            put(|Path(id): Path<u64>| async move {
                match id {
                    5 => AxumStatus::METHOD_NOT_ALLOWED.into_response(),
                    6 => AxumStatus::NOT_IMPLEMENTED.into_response(),
                    _ => (AxumStatus::NOT_FOUND, "{\"error\": \"Not found\"}").into_response(),
                }
            }),
        );
    let client = serve(routes, seen).await;
    assert_eq!(
        client.send_invitation(3).await,
        Err(LearnAmpError::Unsupported(Assumed::Invitation))
    );
    assert_eq!(
        client.send_invitation(4).await,
        Err(LearnAmpError::NotFound)
    );
    let png = b"\x89PNG\r\n\x1a\nxx".as_slice();
    for id in [3, 5, 6] {
        assert_eq!(
            client.set_avatar(id, Some(png)).await,
            Err(LearnAmpError::Unsupported(Assumed::Avatar)),
            "user {id}"
        );
    }
    assert_eq!(
        client.set_avatar(4, Some(png)).await,
        Err(LearnAmpError::NotFound)
    );
}

#[tokio::test]
async fn every_token_request_names_the_scopes() {
    let seen = Arc::new(Seen::default());
    let routes = Router::new().route(
        "/v1/users/{id}",
        get(|Path(id): Path<u64>| async move { axum::Json(user_json(id)) }),
    );
    let addr = {
        let token_seen = seen.clone();
        let app = routes.route(
            "/oauth/token",
            post(move |body: String| {
                let seen = token_seen.clone();
                async move {
                    seen.bodies.lock().expect("lock").push(body);
                    axum::Json(serde_json::json!({"access_token": "t", "expires_in": 0}))
                }
            }),
        );
        serve_app(app).await
    };
    // An empty scope list still names every scope; a 0 s token is renewed each call.
    let config = LearnAmpConfig {
        base_url: format!("http://{addr}"),
        client_id: "cid".into(),
        client_secret: Secret::new("top-secret"),
        scopes: Vec::new(),
    };
    let client = LearnAmpClient::new(config, reqwest::Client::new(), RetryPolicy::fast());
    for id in 1..=3 {
        client.get_user(id).await.expect("ok");
    }
    let bodies = seen.bodies.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    let expected = crate::learnamp::scopes::requested(true).join(" ");
    for body in bodies {
        let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).expect("form body");
        let scope = form.iter().find(|(key, _)| key == "scope").map(|(_, v)| v);
        assert_eq!(scope, Some(&expected), "{body}");
    }
}

#[tokio::test]
async fn a_403_names_the_scope_the_route_needs() {
    let seen = Arc::new(Seen::default());
    let routes = Router::new().route(
        "/v1/users/{id}/deactivate",
        put(|| async { (AxumStatus::FORBIDDEN, r#"{"error": "Forbidden"}"#) }),
    );
    let client = serve(routes, seen).await;
    let error = client.deactivate_user(3).await.expect_err("forbidden");
    assert!(error.is_credentials());
    assert!(error.to_string().contains("users:deactivate"), "{error}");
}

#[tokio::test]
async fn avatar_refuses_non_images_without_calling() {
    let seen = Arc::new(Seen::default());
    let server_seen = seen.clone();
    let routes = Router::new().route(
        "/v1/users/{id}/avatar",
        put(move |headers: AxumHeaders, body: axum::body::Bytes| {
            let seen = server_seen.clone();
            async move {
                let kind = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                seen.bodies
                    .lock()
                    .expect("lock")
                    .push(format!("{kind} {}", body.len()));
                AxumStatus::NO_CONTENT
            }
        })
        .delete(|| async { (AxumStatus::NOT_FOUND, "{\"error\": \"Not found\"}") }),
    );
    let client = serve(routes, seen.clone()).await;
    assert!(client.set_avatar(1, Some(b"GIF89a")).await.is_err());
    assert_eq!(client.requests_made(), 0);
    client
        .set_avatar(1, Some(b"\x89PNG\r\n\x1a\nxx"))
        .await
        .expect("uploaded");
    assert_eq!(
        seen.bodies.lock().expect("lock").last().cloned(),
        Some("image/png 10".into())
    );
    client
        .set_avatar(1, None)
        .await
        .expect("404 on delete is fine");
}

#[tokio::test]
async fn token_refusal_is_unauthorized_without_the_secret() {
    let app = Router::new().route(
        "/oauth/token",
        post(|| async {
            (
                AxumStatus::UNAUTHORIZED,
                r#"{"error": "invalid_client", "error_description": "Client authentication failed"}"#,
            )
        }),
    );
    let client = client_for(serve_app(app).await, RetryPolicy::fast());
    let error = client.get_user(1).await.expect_err("refused");
    assert!(error.is_credentials());
    assert!(error.to_string().contains("invalid_client"));
    assert!(!format!("{error:?} {error}").contains("top-secret"));
    assert_eq!(client.requests_made(), 1);
    assert!(!format!("{client:?}").contains("top-secret"));
}

#[tokio::test]
async fn unreachable_server_is_a_transient_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let retry = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::fast()
    };
    let client = client_for(addr, retry);
    let error = client.get_user(1).await.expect_err("unreachable");
    assert!(matches!(error, LearnAmpError::Transport(_)), "{error:?}");
    assert!(error.is_transient());
    assert_eq!(client.requests_made(), 3);
}

#[tokio::test]
async fn rate_limits_are_retried_and_other_4xx_are_not() {
    let seen = Arc::new(Seen::default());
    let server_seen = seen.clone();
    let routes = Router::new()
        .route(
            "/v1/users/{id}/deactivate",
            put(move || {
                let seen = server_seen.clone();
                async move {
                    if seen.hits.fetch_add(1, Ordering::SeqCst) == 0 {
                        return ([("Retry-After", "0")], AxumStatus::TOO_MANY_REQUESTS)
                            .into_response();
                    }
                    AxumStatus::NO_CONTENT.into_response()
                }
            }),
        )
        .route(
            "/v1/users/{id}/reactivate",
            put(|| async { (AxumStatus::FORBIDDEN, r#"{"error": "missing scope"}"#) }),
        );
    let client = serve(routes, seen.clone()).await;
    client.deactivate_user(3).await.expect("retried");
    assert_eq!(seen.hits.load(Ordering::SeqCst), 2);
    let before = client.requests_made();
    let error = client.reactivate_user(3).await.expect_err("forbidden");
    assert_eq!(
        error,
        LearnAmpError::Forbidden {
            message:
                "missing scope (PUT /v1/users/{id}/reactivate needs the scope users:reactivate)"
                    .into()
        }
    );
    assert_eq!(client.requests_made(), before + 1);
}

#[test]
fn path_segments_are_encoded() {
    assert_eq!(encode_path_segment("HR/1001"), "HR%2F1001");
    assert_eq!(encode_path_segment("a b+ä"), "a%20b%2B%C3%A4");
    assert_eq!(encode_path_segment("4711"), "4711");
}

#[test]
fn request_debug_hides_form_values() {
    let request = ApiRequest::new(Method::POST, "/oauth/token").body(RequestBody::Form(vec![(
        "client_secret".into(),
        "top-secret".into(),
    )]));
    let shown = format!("{request:?}");
    assert!(shown.contains("client_secret"));
    assert!(!shown.contains("top-secret"));
}

#[test]
fn tokens_renew_early() {
    assert_eq!(
        renewal_delay(Duration::from_secs(7200)),
        Duration::from_secs(7140)
    );
    assert_eq!(
        renewal_delay(Duration::from_secs(60)),
        Duration::from_secs(30)
    );
}
