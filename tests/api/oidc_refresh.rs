//! Issue 15, the token refresher of "Sign in with Personio" (`connect::tokens`) against
//! the simulator's provider: a caller that stops waiting mid-refresh never lets a second
//! refresh spend the same refresh token (which the provider takes for theft), and a
//! provider outage during a refresh leaves the tenant `degraded`, not `failed`, until it
//! passes.

use std::time::{Duration, Instant};

use reqwest::Method;

use crate::connect::{awaiting_spec, sign_in, spawn_connect_app, token_of};
use crate::helpers::*;
use personio_sync::connect::tokens::OidcTokenSources;
use personio_sync::connect::{Connection, connect_tenant};
use personio_sync::domain::Secret;
use personio_sync::personio::TokenSource;

/// Creates tenant `acme`, connects it by signing in as the administrator and waits for
/// its first sync.
async fn connected(app: &TestApp) {
    let (status, body) = app
        .create_tenant(&awaiting_spec("acme", &app.personio, &app.learnamp))
        .await;
    assert_eq!(status, 201, "{body}");
    let invitation = app
        .state
        .services
        .invitations()
        .create("acme", None, None)
        .await
        .expect("invitation");
    let grant = sign_in(app, app.personio.oidc_admin())
        .await
        .expect("grant");
    connect_tenant(
        &app.state,
        "acme",
        Connection::Oidc(grant),
        Some(token_of(&invitation.url)),
    )
    .await
    .expect("connected");
    app.wait_for("acme", Duration::from_secs(120), |view| {
        view["state"] == "live" && view["last_sync"]["finished_at"].is_string()
    })
    .await;
}

/// The refresh token stored for `acme`.
async fn stored_refresh_token(app: &TestApp) -> Secret {
    app.state
        .store
        .tenant_spec("acme")
        .await
        .expect("store")
        .expect("tenant")
        .personio_oidc
        .expect("connected by signing in")
        .refresh_token
}

/// Refresh requests the provider answered so far (injected failures included).
fn refresh_calls(app: &TestApp) -> usize {
    app.personio
        .log
        .all()
        .iter()
        .filter(|call| call.method == Method::POST && call.path == "/oauth/token")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_dropped_mid_refresh_lets_no_second_refresh_reuse_the_refresh_token() {
    let app = spawn_connect_app(10, true).await;
    connected(&app).await;
    let before = stored_refresh_token(&app).await;
    // A source of its own (the tenant's keeps its fresh token and stays out of the
    // way), sharing the tenant's storage: its first call refreshes.
    let sources = OidcTokenSources::default();
    let tokens = sources.get("acme", &app.state.store, app.state.services.oidc.clone());
    app.personio.log.clear();
    app.personio.knobs.set_latency(Duration::from_millis(800));

    // The caller gives up while the provider is still answering (a page's timeout, a
    // closed browser, a tenant actor stopped by a restart) …
    let abandoned = tokio::time::timeout(Duration::from_millis(200), tokens.access_token()).await;
    assert!(abandoned.is_err(), "the refresh outlasts the caller");
    // … and the next caller gets the token of that same refresh, not a second refresh
    // with the refresh token it already spent (the provider would revoke the grant).
    let token = tokens
        .access_token()
        .await
        .expect("a token, the grant intact");
    app.personio.knobs.set_latency(Duration::ZERO);
    assert_eq!(refresh_calls(&app), 1, "one refresh for one rotation");
    let rotated = stored_refresh_token(&app).await;
    assert_ne!(rotated, before, "the rotated refresh token is stored");

    // The grant still works: the stored token refreshes again, and the tenant (on its
    // own access token) syncs.
    tokens.refused(&token);
    let again = tokens.access_token().await.expect("refreshed again");
    assert_ne!(again, token);
    assert_eq!(refresh_calls(&app), 2);
    assert_ne!(stored_refresh_token(&app).await, rotated);
    let previous = app.view("acme").await["last_sync"]["finished_at"]
        .as_str()
        .map(str::to_string);
    let (status, body) = app.admin("POST", "/admin/tenants/acme/sync", None).await;
    assert_eq!(status, 202, "{body}");
    let view = app.wait_for_sync("acme", previous.as_deref()).await;
    assert_eq!(view["state"], "live", "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_outage_during_a_refresh_degrades_the_tenant_until_it_passes() {
    let app = spawn_connect_app(10, true).await;
    // Access tokens live 2 s: every sync after the first second needs a refresh.
    app.personio
        .set_oidc_access_token_ttl(Duration::from_secs(2));
    connected(&app).await;
    let before = stored_refresh_token(&app).await;

    // The provider's token endpoint answers 503 (the Personio API itself is up).
    app.personio.knobs.set_path_failing("/oauth/token", true);
    let deadline = Instant::now() + Duration::from_secs(60);
    let view = loop {
        let view = app.view("acme").await;
        if view["state"] != "live" {
            break view;
        }
        assert!(Instant::now() < deadline, "no refresh was needed: {view}");
        let previous = view["last_sync"]["finished_at"]
            .as_str()
            .map(str::to_string);
        let (status, body) = app.admin("POST", "/admin/tenants/acme/sync", None).await;
        assert_eq!(status, 202, "{body}");
        app.wait_for("acme", Duration::from_secs(60), |view| {
            view["state"] == "degraded"
                || view["state"] == "failed"
                || (view["state"] == "live"
                    && view["last_sync"]["finished_at"].as_str() != previous.as_deref())
        })
        .await;
    };
    assert_eq!(view["state"], "degraded", "{view}");
    let message = view["last_error"].as_str().unwrap_or_default();
    assert!(
        message.contains("retrying automatically") && !message.contains("reconnect"),
        "{view}"
    );

    // It keeps trying (with backoff) and never gives the connection up.
    let failed_refreshes = refresh_calls(&app);
    app.wait_for("acme", Duration::from_secs(60), |view| {
        assert_ne!(view["state"], "failed", "{view}");
        refresh_calls(&app) >= failed_refreshes + 2
    })
    .await;
    assert_eq!(
        stored_refresh_token(&app).await,
        before,
        "nothing was spent"
    );

    // The outage passes: live again by itself, on a rotated refresh token.
    app.personio.knobs.set_path_failing("/oauth/token", false);
    let view = app
        .wait_for("acme", Duration::from_secs(120), |view| {
            assert_ne!(view["state"], "failed", "{view}");
            view["state"] == "live"
        })
        .await;
    assert_eq!(view["last_error"], serde_json::Value::Null, "{view}");
    assert_ne!(stored_refresh_token(&app).await, before);
    assert_learnamp_matches_personio(&app);
}
