//! The connect flow in the browser (issue 15): an invitation link, "Sign in with
//! Personio" or "Use API credentials", the initial sync on the overview; and the
//! refusals — a wrong secret, a Personio user without administrator rights, a
//! credential missing attributes, an expired link, a forged state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use personio_sync::domain::mapping::REQUIRED_ATTRIBUTES;
use personio_sync_sim::personio::{PersonioSimConfig, SimCredential};
use personio_sync_testkit::{
    Setup, TestApp, assert_learnamp_matches_personio, oidc_at_simulator, spawn_with_sims,
};
use serde_json::{Value, json};

use crate::harness::{ready, run_script};

/// Starts the simulators and the service with `[personio] base_url` and "Sign in with
/// Personio" pointed at the Personio simulator, and creates tenant `acme` awaiting its
/// connection.
async fn app_awaiting(employees: usize, extra: Vec<SimCredential>) -> TestApp {
    let setup = Setup {
        personio: PersonioSimConfig {
            employees,
            seed: 15,
            extra_credentials: extra,
            ..PersonioSimConfig::default()
        },
        ..Setup::default()
    };
    let app = spawn_with_sims(setup, oidc_at_simulator)
        .await
        .expect("service starts");
    let spec = json!({
        "id": "acme",
        "learnamp": {"base_url": app.learnamp.base_url, "client_id": "sim-client", "client_secret": "sim-secret"},
        "settings": {}
    });
    let (status, body) = app.create_tenant(&spec).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["state"], "awaiting_connection", "{body}");
    app
}

/// A new invitation's URL.
async fn invite(app: &TestApp) -> String {
    let (status, body) = app
        .admin("POST", "/admin/tenants/acme/invitations", Some(&json!({})))
        .await;
    assert_eq!(status, 201, "{body}");
    body["url"].as_str().expect("an invitation URL").to_string()
}

/// Asserts that nothing was stored: still awaiting its connection, no connection.
async fn assert_not_connected(app: &TestApp) {
    let view = app.view("acme").await;
    assert_eq!(view["state"], "awaiting_connection", "{view}");
    assert_eq!(view["connection"], Value::Null, "{view}");
    assert!(app.learnamp.users().is_empty(), "nothing was synced");
}

/// Asserts the tenant is live after one full sync of every employee, as the page said.
async fn assert_connected(app: &TestApp, result: &Value, method: &str, by: Option<&str>) {
    let view = app.wait_for_sync("acme", None).await;
    assert_eq!(view["state"], "live", "{view}");
    assert_eq!(view["connection"]["method"], method, "{view}");
    assert_eq!(view["connection"]["by"], json!(by), "{view}");
    assert_eq!(
        result["linked"], view["employees"],
        "the page showed the linked count: {result} {view}"
    );
    assert_eq!(
        result["created"], view["last_sync"]["created"],
        "{result} {view}"
    );
    assert!(
        view["last_sync"]["created"].as_u64().unwrap() > 400,
        "{view}"
    );
    assert_learnamp_matches_personio(app);
    let page = result["connection"].as_str().unwrap_or_default();
    if let Some(by) = by {
        assert!(page.contains(by), "the overview says who connected: {page}");
    }
}

fn login(pair: (String, String)) -> [(&'static str, String); 2] {
    [("LOGIN_EMAIL", pair.0), ("LOGIN_PASSWORD", pair.1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_personio_connects_and_syncs_500() {
    if !ready("sign_in_with_personio_connects_and_syncs_500") {
        return;
    }
    let app = app_awaiting(500, Vec::new()).await;
    let url = invite(&app).await;
    let (email, password) = app.personio.oidc_admin();
    let mut env = vec![
        ("INVITE_URL", url),
        ("PROVIDER_BASE", app.personio.base_url.clone()),
        ("EXPECT", "connected".into()),
    ];
    env.extend(login((email.clone(), password)));
    let outcome = run_script("oidc", "oidc", &env).await;
    assert_connected(&app, &outcome.result, "oidc", Some(&email)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_credentials_connect_and_sync_500() {
    if !ready("api_credentials_connect_and_sync_500") {
        return;
    }
    let app = app_awaiting(500, Vec::new()).await;
    let url = invite(&app).await;
    let env = [
        ("INVITE_URL", url),
        ("CLIENT_ID", "sim-client".into()),
        ("CLIENT_SECRET", "sim-secret".into()),
        ("EXPECT", "connected".into()),
    ];
    let outcome = run_script("credentials", "credentials", &env).await;
    assert_connected(&app, &outcome.result, "client_credentials", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_is_refused_on_the_page() {
    if !ready("a_wrong_client_secret_is_refused_on_the_page") {
        return;
    }
    let app = app_awaiting(20, Vec::new()).await;
    let url = invite(&app).await;
    let env = [
        ("INVITE_URL", url),
        ("CLIENT_ID", "sim-client".into()),
        ("CLIENT_SECRET", "not-the-secret-4711".into()),
        ("EXPECT", "refused".into()),
        ("EXPECT_TEXT", "did not accept these credentials".into()),
    ];
    run_script("credentials", "wrong-secret", &env).await;
    assert_not_connected(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_personio_user_without_administrator_rights_is_refused() {
    if !ready("a_personio_user_without_administrator_rights_is_refused") {
        return;
    }
    let app = app_awaiting(20, Vec::new()).await;
    let url = invite(&app).await;
    let mut env = vec![
        ("INVITE_URL", url),
        ("PROVIDER_BASE", app.personio.base_url.clone()),
        ("EXPECT", "refused".into()),
        ("EXPECT_TEXT", "lacks administrator access".into()),
    ];
    env.extend(login(app.personio.oidc_non_admin()));
    run_script("oidc", "non-admin", &env).await;
    assert_not_connected(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_missing_attributes_is_refused_naming_them() {
    if !ready("a_credential_missing_attributes_is_refused_naming_them") {
        return;
    }
    // Everything the sync reads (the default settings also read `supervisor`) but
    // `status` and `termination_date`.
    let readable = REQUIRED_ATTRIBUTES
        .iter()
        .chain(&["supervisor"])
        .filter(|key| !["status", "termination_date"].contains(key))
        .map(|key| key.to_string())
        .collect();
    let restricted = SimCredential {
        client_id: "restricted-client".into(),
        client_secret: "restricted-secret".into(),
        readable_attributes: Some(readable),
    };
    let app = app_awaiting(20, vec![restricted]).await;
    let url = invite(&app).await;
    let env = [
        ("INVITE_URL", url),
        ("CLIENT_ID", "restricted-client".into()),
        ("CLIENT_SECRET", "restricted-secret".into()),
        ("EXPECT", "refused".into()),
        (
            "EXPECT_TEXT",
            "status|termination_date|Settings → Integrations → API credentials".into(),
        ),
    ];
    let outcome = run_script("credentials", "missing-attributes", &env).await;
    assert_eq!(
        outcome.result["missing"],
        json!(["status", "termination_date"]),
        "{}",
        outcome.result
    );
    assert_not_connected(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_shows_what_to_do_and_starts_no_session() {
    if !ready("an_expired_link_shows_what_to_do_and_starts_no_session") {
        return;
    }
    let app = app_awaiting(5, Vec::new()).await;
    // An invitation made "7 days ago minus a few seconds" by a clock set back: it
    // expires a few seconds into the test, without waiting days.
    let lifetime = chrono::Duration::days(7) - chrono::Duration::seconds(4);
    let clock: personio_sync::clock::SharedClock = Arc::new(
        personio_sync::clock::TokioClock::starting_at(chrono::Utc::now() - lifetime),
    );
    let invitations = personio_sync::connect::Invitations::new(
        app.state.services.store.clone(),
        clock,
        app.base.clone(),
    );
    let made = invitations
        .create("acme", None, Some(7))
        .await
        .expect("invitation made");
    let token = made.url.rsplit('/').next().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let env = [("INVITE_URL", made.url.clone())];
    let script = tokio::spawn(async move { run_script("expired", "expired", &env).await });
    // The link must have been valid once; then it expires (checked by the service's own
    // rule), and the script, retrying with its own deadline, sees the expired page.
    while app.state.services.invitations().open(&token).await.is_ok() {
        assert!(Instant::now() < deadline, "the invitation never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    script.await.expect("the script ran");
    assert_not_connected(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_state_is_refused_and_nothing_is_stored() {
    if !ready("a_forged_state_is_refused_and_nothing_is_stored") {
        return;
    }
    let app = app_awaiting(5, Vec::new()).await;
    let url = invite(&app).await;
    let mut env = vec![("INVITE_URL", url)];
    env.extend(login(app.personio.oidc_admin()));
    run_script("forged_state", "forged-state", &env).await;
    assert_not_connected(&app).await;
}
