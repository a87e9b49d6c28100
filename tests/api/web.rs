//! The customer pages over plain HTTP (contract §7): the session cookie's attributes, a
//! session bound to one tenant, CSRF on every form, no session for a refused link, and
//! no secret in a page.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::helpers::*;
use personio_sync_sim::personio::PersonioSimConfig;

/// An app with tenants `acme` (awaiting its connection) and `other`, and a client that
/// does not follow redirects.
async fn app_with_two_tenants() -> (TestApp, reqwest::Client) {
    let setup = Setup {
        personio: PersonioSimConfig {
            employees: 5,
            seed: 16,
            ..PersonioSimConfig::default()
        },
        ..Setup::default()
    };
    let app = spawn_with_sims(setup, |_, _| {})
        .await
        .expect("service starts");
    for id in ["acme", "other"] {
        let mut spec = app.spec(id, json!({}));
        spec.as_object_mut().unwrap().remove("personio");
        let (status, body) = app.create_tenant(&spec).await;
        assert_eq!(status, 201, "{body}");
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (app, http)
}

async fn invite(app: &TestApp, id: &str) -> String {
    let (status, body) = app
        .admin(
            "POST",
            &format!("/admin/tenants/{id}/invitations"),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["url"].as_str().unwrap().to_string()
}

/// Opens `url`; the `name=value` of the session cookie it set.
async fn open(http: &reqwest::Client, url: &str) -> (reqwest::Response, Option<String>) {
    let response = http.get(url).send().await.unwrap();
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .map(|value| value.to_str().unwrap().to_string());
    (response, cookie)
}

/// Posts the credentials form (the simulator's good credential) with `cookie` and `csrf`.
async fn post_credentials(
    http: &reqwest::Client,
    app: &TestApp,
    cookie: &str,
    csrf: &str,
) -> reqwest::Response {
    http.post(format!("{}/connect/credentials", app.base))
        .header(COOKIE, cookie)
        .form(&[
            ("csrf", csrf),
            ("client_id", "sim-client"),
            ("client_secret", "sim-secret"),
        ])
        .send()
        .await
        .unwrap()
}

fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a csrf field") + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_starts_a_session_for_its_tenant_only() {
    let (app, http) = app_with_two_tenants().await;
    let url = invite(&app, "acme").await;
    let (response, cookie) = open(&http, &url).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[LOCATION],
        "/connect",
        "the token leaves the address bar"
    );
    let cookie = cookie.expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "http public URL: no Secure ({cookie})"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let token = url.rsplit('/').next().unwrap();
    assert!(
        !session.contains(token),
        "the session id is not the invitation token"
    );

    let page = http
        .get(format!("{}/connect", app.base))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign in with Personio") && html.contains("Use API credentials"));
    assert!(!html.contains(token), "no invitation token in the page");
    assert!(
        !html.contains(session.split('=').nth(1).unwrap()),
        "no session id in the page"
    );

    for path in ["/app/other/", "/app/other/settings"] {
        let refused = http
            .get(format!("{}{path}", app.base))
            .header(COOKIE, &session)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let without = http
        .get(format!("{}/connect", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
    let forged = http
        .get(format!("{}/app/acme/", app.base))
        .header(COOKIE, "psync_session=00ff")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_the_sessions_csrf_token_changes_nothing() {
    let (app, http) = app_with_two_tenants().await;
    let (_, acme_cookie) = open(&http, &invite(&app, "acme").await).await;
    let acme = acme_cookie.unwrap().split(';').next().unwrap().to_string();
    let (_, other_cookie) = open(&http, &invite(&app, "other").await).await;
    let other = other_cookie.unwrap().split(';').next().unwrap().to_string();
    let page = |cookie: String| {
        let http = http.clone();
        let base = app.base.clone();
        async move {
            http.get(format!("{base}/connect/credentials"))
                .header(COOKIE, cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let acme_csrf = csrf_of(&page(acme.clone()).await);
    let other_csrf = csrf_of(&page(other.clone()).await);
    assert_ne!(acme_csrf, other_csrf);
    for csrf in [
        String::new(),
        other_csrf.clone(),
        acme_csrf[..acme_csrf.len() - 1].to_string(),
    ] {
        let answer = post_credentials(&http, &app, &acme, &csrf).await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "csrf {csrf:?}");
    }
    let answer = http
        .post(format!("{}/connect/oidc", app.base))
        .header(COOKIE, &acme)
        .form(&[("csrf", other_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let view = app.view("acme").await;
    assert_eq!(view["state"], "awaiting_connection", "{view}");
    assert_eq!(view["connection"], Value::Null, "{view}");

    // With the session's own token the same form connects (and shows no secret).
    let answer = post_credentials(&http, &app, &acme, &acme_csrf).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(answer.headers()[LOCATION], "/app/acme/");
    let view = app.view("acme").await;
    assert_eq!(view["connection"]["method"], "client_credentials", "{view}");
    let overview = http
        .get(format!("{}/app/acme/", app.base))
        .header(COOKIE, &acme)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(overview.contains(">Connected<"));
    assert!(!overview.contains("sim-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_link_starts_no_session() {
    let (app, http) = app_with_two_tenants().await;
    let url = invite(&app, "acme").await;
    let (status, _) = app
        .admin("DELETE", "/admin/tenants/acme/invitations", None)
        .await;
    assert_eq!(status, 204);
    let (response, cookie) = open(&http, &url).await;
    assert_eq!(response.status(), StatusCode::GONE);
    assert!(cookie.is_none(), "no session for a revoked link");
    assert!(response.text().await.unwrap().contains("new invitation"));
    let (response, cookie) =
        open(&http, &format!("{}/connect/{}", app.base, "ab".repeat(32))).await;
    assert_eq!(response.status(), StatusCode::GONE);
    assert!(cookie.is_none(), "no session for an unknown link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_invitation_ends_the_sessions_it_opened() {
    let (app, http) = app_with_two_tenants().await;
    let (_, cookie) = open(&http, &invite(&app, "acme").await).await;
    let acme = cookie.unwrap().split(';').next().unwrap().to_string();
    let page = http
        .get(format!("{}/connect/credentials", app.base))
        .header(COOKIE, &acme)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page);
    let (status, body) = app
        .admin("DELETE", "/admin/tenants/acme/invitations", None)
        .await;
    assert_eq!(status, 204, "{body}");

    let answer = post_credentials(&http, &app, &acme, &csrf).await;
    // Revoking ended the session the link had opened.
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    let view = app.view("acme").await;
    assert_eq!(view["state"], "awaiting_connection", "{view}");
    assert_eq!(view["connection"], Value::Null, "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_of_another_tenant_asks_before_it_swaps_the_session() {
    let (app, http) = app_with_two_tenants().await;
    let (_, cookie) = open(&http, &invite(&app, "acme").await).await;
    let acme = cookie.unwrap().split(';').next().unwrap().to_string();
    let other_link = invite(&app, "other").await;

    // Opened (say, from another site) in the browser signed in for acme: a question, no
    // new session, acme's session intact.
    let answer = http
        .get(&other_link)
        .header(COOKIE, &acme)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(answer.headers().get(SET_COOKIE).is_none());
    let page = answer.text().await.unwrap();
    assert!(page.contains("Continue with other"), "{page}");
    assert!(page.contains("Stay with acme"), "{page}");
    let csrf = csrf_of(&page);
    let still = http
        .get(format!("{}/connect", app.base))
        .header(COOKIE, &acme)
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), StatusCode::OK, "acme's session holds");

    // A post without the session's token (another site cannot know it) swaps nothing.
    let forged = http
        .post(&other_link)
        .header(COOKIE, &acme)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.headers().get(SET_COOKIE).is_none());

    // Confirmed: a session for `other`, and acme's has ended.
    let confirmed = http
        .post(&other_link)
        .header(COOKIE, &acme)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
    assert_eq!(confirmed.headers()[LOCATION], "/connect");
    let other = confirmed.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = http
        .get(format!("{}/connect", app.base))
        .header(COOKIE, &other)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("other"), "{page}");
    let ended = http
        .get(format!("{}/connect", app.base))
        .header(COOKIE, &acme)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::UNAUTHORIZED);
}
