//! Issue 15 (contract §7), service side: a tenant created without Personio awaits its
//! connection and runs nothing; invitations are made, revoked and expire, and only their
//! hash is stored; `connect::connect_tenant` verifies before it stores and then starts
//! the tenant; "Sign in with Personio" connects, refreshes and, when the grant is gone,
//! fails with a reconnect message until a new invitation brings the tenant back.

use std::time::Duration;

use serde_json::{Value, json};

use crate::child::ServiceProcess;
use crate::helpers::*;
use personio_sync::connect::{Connection, InvitationError, VerifyError, connect_tenant};
use personio_sync::domain::Secret;
use personio_sync_sim::learnamp::{LearnAmpSim, LearnAmpSimConfig};
use personio_sync_sim::personio::{PersonioSim, PersonioSimConfig};

/// A spec for `id` without `personio`: the tenant awaits its connection.
pub(crate) fn awaiting_spec(id: &str, personio: &PersonioSim, learnamp: &LearnAmpSim) -> Value {
    let mut spec = tenant_spec(id, personio, learnamp, json!({}));
    spec.as_object_mut().expect("object").remove("personio");
    spec
}

/// The token of an invitation URL.
pub(crate) fn token_of(url: &str) -> &str {
    url.rsplit('/').next().expect("token")
}

/// An app (`[personio] base_url` at the simulator, as the kit sets it) with `employees`
/// people in Personio; with "Sign in with Personio" at the simulator when `oidc`.
pub(crate) async fn spawn_connect_app(employees: usize, oidc: bool) -> TestApp {
    let personio = PersonioSimConfig {
        employees,
        seed: 15,
        ..PersonioSimConfig::default()
    };
    spawn_with_sims(
        Setup {
            personio,
            ..Setup::default()
        },
        |config, personio| {
            if oidc {
                oidc_at_simulator(config, personio);
            }
        },
    )
    .await
    .expect("service starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_awaiting_tenant_runs_nothing_and_stays_awaiting_across_a_restart() {
    let personio = PersonioSim::start(PersonioSimConfig {
        employees: 30,
        seed: 1,
        ..PersonioSimConfig::default()
    })
    .await
    .expect("personio sim");
    let idle_learnamp = LearnAmpSim::start(LearnAmpSimConfig::default())
        .await
        .expect("learn amp sim");
    let busy_learnamp = LearnAmpSim::start(LearnAmpSimConfig::default())
        .await
        .expect("learn amp sim");
    let mut service = ServiceProcess::start(&[("RUST_LOG", "info")]).await;
    let (status, view) = service
        .admin(
            reqwest::Method::POST,
            "/admin/tenants",
            Some(&awaiting_spec("waiting", &personio, &idle_learnamp)),
        )
        .await;
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["state"], "awaiting_connection", "{view}");
    assert_eq!(view["connection"], Value::Null, "{view}");
    // A connected tenant next to it syncs all the way: by then the awaiting one has had
    // every chance to run.
    let (status, body) = service
        .admin(
            reqwest::Method::POST,
            "/admin/tenants",
            Some(&tenant_spec("busy", &personio, &busy_learnamp, json!({}))),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["connection"]["method"], "client_credentials", "{body}");
    assert_eq!(body["connection"]["by"], Value::Null, "{body}");
    assert!(body["connection"]["at"].is_string(), "{body}");
    service
        .wait_view(
            "busy",
            "the busy tenant's sync",
            Duration::from_secs(60),
            |view| view["state"] == "live" && view["last_sync"]["finished_at"].is_string(),
        )
        .await;
    let view = service.view("waiting").await;
    assert_eq!(view["state"], "awaiting_connection", "{view}");
    assert_eq!(view["last_sync"], Value::Null, "{view}");
    assert_eq!(
        idle_learnamp.token_requests(),
        (0, 0),
        "Learn Amp was called"
    );
    assert!(idle_learnamp.users().is_empty());
    let waiting_url = view["webhook_url"].as_str().expect("webhook url");
    assert!(
        personio
            .webhooks()
            .iter()
            .all(|hook| hook.url != waiting_url),
        "a subscription was registered for the awaiting tenant"
    );
    // A restart keeps it awaiting (and the other one connected).
    service.terminate();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while service.exited().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    service.restart().await;
    let view = service.view("waiting").await;
    assert_eq!(view["state"], "awaiting_connection", "{view}");
    assert_eq!(view["connection"], Value::Null, "{view}");
    let busy = service.view("busy").await;
    assert_eq!(busy["connection"]["method"], "client_credentials", "{busy}");
    assert_eq!(
        idle_learnamp.token_requests(),
        (0, 0),
        "Learn Amp was called"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_are_made_revoked_and_refused_and_only_their_hash_is_stored() {
    let app = spawn_app(5, 1).await;
    let spec = awaiting_spec("acme", &app.personio, &app.learnamp);
    let (status, body) = app.create_tenant(&spec).await;
    assert_eq!(status, 201, "{body}");
    let invitations = app.state.services.invitations();

    let (status, made) = app
        .admin(
            "POST",
            "/admin/tenants/acme/invitations",
            Some(&json!({"email": "admin@acme.test", "expires_in_days": 3})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let url = made["url"].as_str().expect("url");
    assert!(url.starts_with(&format!("{}/connect/", app.base)), "{url}");
    let token = token_of(url).to_string();
    assert!(token.len() >= 32, "at least 128 bits");
    let expires_at = chrono::DateTime::parse_from_rfc3339(made["expires_at"].as_str().unwrap())
        .expect("RFC 3339");
    let days = (expires_at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours();
    assert!((71..=72).contains(&days), "{days} hours");
    let open = invitations.open(&token).await.expect("opens");
    assert_eq!(open.tenant_id, "acme");
    assert_eq!(open.email.as_deref(), Some("admin@acme.test"));

    // Only the hash is in sled.
    let stored = app.state.store.invitations_of("acme").await.unwrap();
    assert_eq!(stored.len(), 1);
    let everything = format!(
        "{:?}",
        personio_sync::export::export(&app.state.store, true)
            .await
            .unwrap()
    );
    assert!(!everything.contains(&token), "the token is stored in clear");
    assert!(everything.contains(&personio_sync::connect::invitations::hash(&token)));

    // Defaults and bad requests.
    let (status, default) = app
        .admin("POST", "/admin/tenants/acme/invitations", None)
        .await;
    assert_eq!(status, 201, "{default}");
    for bad in [
        json!({"expires_in_days": 0}),
        json!({"expires_in_days": 31}),
    ] {
        let (status, body) = app
            .admin("POST", "/admin/tenants/acme/invitations", Some(&bad))
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["field"], "expires_in_days", "{body}");
    }
    let (status, body) = app
        .admin("POST", "/admin/tenants/nope/invitations", None)
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app
        .admin("DELETE", "/admin/tenants/nope/invitations", None)
        .await;
    assert_eq!(status, 404, "{body}");

    // Revoking closes both.
    let (status, body) = app
        .admin("DELETE", "/admin/tenants/acme/invitations", None)
        .await;
    assert_eq!(status, 204, "{body}");
    for url in [url, default["url"].as_str().unwrap()] {
        assert!(matches!(
            invitations.open(token_of(url)).await,
            Err(InvitationError::Revoked)
        ));
    }
    assert!(matches!(
        invitations.open("not-a-token").await,
        Err(InvitationError::Unknown)
    ));

    // Deleting the tenant removes its invitations.
    let (status, _) = app
        .admin("POST", "/admin/tenants/acme/invitations", None)
        .await;
    assert_eq!(status, 201);
    let (status, body) = app.admin("DELETE", "/admin/tenants/acme", None).await;
    assert_eq!(status, 204, "{body}");
    assert!(
        app.state
            .store
            .invitations_of("acme")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_expires_on_the_service_clock() {
    use personio_sync::connect::Invitations;
    let app = spawn_app(5, 1).await;
    let (status, body) = app
        .create_tenant(&awaiting_spec("acme", &app.personio, &app.learnamp))
        .await;
    assert_eq!(status, 201, "{body}");
    // The service's invitations, judged by a clock the test moves.
    let clock = std::sync::Arc::new(ManualClock::default());
    let invitations = Invitations::new(
        app.state.store.clone(),
        clock.clone(),
        app.state.services.public_url.clone(),
    );
    let made = invitations.create("acme", None, Some(1)).await.unwrap();
    let token = token_of(&made.url);
    assert!(invitations.open(token).await.is_ok());
    // The service's own handle (system clock) sees the same stored invitation.
    assert!(app.state.services.invitations().open(token).await.is_ok());
    clock.advance(chrono::Duration::hours(23));
    assert!(invitations.open(token).await.is_ok());
    clock.advance(chrono::Duration::hours(1));
    let error = invitations.open(token).await.unwrap_err();
    assert!(
        matches!(error, InvitationError::Expired { at } if at == made.expires_at),
        "{error:?}"
    );
}

/// A clock that moves only when told.
#[derive(Default)]
struct ManualClock {
    offset: std::sync::Mutex<chrono::Duration>,
}

impl ManualClock {
    fn advance(&self, by: chrono::Duration) {
        *self.offset.lock().unwrap() += by;
    }
}

impl personio_sync::clock::Clock for ManualClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + *self.offset.lock().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_connect_an_awaiting_tenant_after_the_check() {
    let app = spawn_connect_app(500, false).await;
    let (status, body) = app
        .create_tenant(&awaiting_spec("acme", &app.personio, &app.learnamp))
        .await;
    assert_eq!(status, 201, "{body}");
    let invitations = app.state.services.invitations();
    let made = invitations
        .create("acme", Some("it@acme.test".into()), None)
        .await
        .unwrap();
    let token = token_of(&made.url).to_string();

    // A wrong secret: refused, nothing stored.
    let wrong = Connection::ClientCredentials {
        client_id: SIM_CLIENT_ID.to_string(),
        client_secret: Secret::new("wrong-secret"),
    };
    let error = connect_tenant(&app.state, "acme", wrong, Some(&token))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            personio_sync::connect::ConnectError::Refused(VerifyError::CredentialsRefused)
        ),
        "{error:?}"
    );
    assert!(!error.customer_message().contains("wrong-secret"));
    let stored = app.state.store.tenant_spec("acme").await.unwrap().unwrap();
    assert!(stored.personio.is_none() && stored.connection.is_none());
    assert_eq!(app.view("acme").await["state"], "awaiting_connection");
    assert!(invitations.open(&token).await.unwrap().used_at.is_none());

    // A credential that cannot read status and termination_date: refused, naming them.
    let readable: Vec<String> = personio_sync::domain::mapping::REQUIRED_ATTRIBUTES
        .iter()
        .chain(["supervisor"].iter())
        .filter(|key| !["status", "termination_date"].contains(key))
        .map(|key| key.to_string())
        .collect();
    app.personio.set_readable_attributes(Some(readable));
    let right = Connection::ClientCredentials {
        client_id: SIM_CLIENT_ID.to_string(),
        client_secret: Secret::new(SIM_CLIENT_SECRET),
    };
    let error = connect_tenant(&app.state, "acme", right.clone(), Some(&token))
        .await
        .unwrap_err();
    let personio_sync::connect::ConnectError::Refused(VerifyError::MissingAttributes {
        attributes,
        ..
    }) = &error
    else {
        panic!("missing attributes expected, got {error:?}");
    };
    assert_eq!(attributes, &["status", "termination_date"]);
    let message = error.customer_message();
    assert!(
        message.contains("status") && message.contains("termination_date"),
        "{message}"
    );
    assert!(message.contains("API credentials"), "{message}");
    assert!(
        app.state
            .store
            .tenant_spec("acme")
            .await
            .unwrap()
            .unwrap()
            .personio
            .is_none()
    );

    // The right credential: stored, connected, live, 500 employees synced.
    app.personio.set_readable_attributes(None);
    let view = connect_tenant(&app.state, "acme", right, Some(&token))
        .await
        .expect("connected");
    assert_eq!(
        view.connection.as_ref().unwrap().by.as_deref(),
        Some("it@acme.test")
    );
    let view = app
        .wait_for("acme", Duration::from_secs(120), |view| {
            view["state"] == "live" && view["last_sync"]["finished_at"].is_string()
        })
        .await;
    assert_eq!(view["connection"]["method"], "client_credentials", "{view}");
    assert_eq!(
        view["employees"].as_u64(),
        Some(synced_users(&app)),
        "{view}"
    );
    assert!(synced_users(&app) > 400, "{view}");
    assert_learnamp_matches_personio(&app);
    assert_eq!(app.personio.webhooks().len(), 1, "one subscription");
    assert!(invitations.open(&token).await.unwrap().used_at.is_some());
    // The secret is sealed at rest and never in the view.
    assert!(!view.to_string().contains(SIM_CLIENT_SECRET));
}

/// Learn Amp users linked to a Personio person.
fn synced_users(app: &TestApp) -> u64 {
    app.learnamp
        .users()
        .iter()
        .filter(|user| user.integration_external_id.is_some())
        .count() as u64
}

/// Signs in at the simulator as `user` through the service's relying party and
/// finishes: the grant.
pub(crate) async fn sign_in(
    app: &TestApp,
    user: (String, String),
) -> Result<personio_sync::personio::oidc::OidcGrant, personio_sync::personio::oidc::OidcError> {
    let rp = app
        .state
        .services
        .oidc
        .clone()
        .expect("Sign in with Personio configured");
    let redirect = format!("{}/connect/oidc/callback", app.base);
    let (url, pending) = rp.begin(&redirect).await?;
    let back = app
        .personio
        .oidc_sign_in(
            &url,
            &user.0,
            &user.1,
            personio_sync_sim::personio::Consent::Allow,
        )
        .await
        .expect("signed in at the simulator");
    let back = reqwest::Url::parse(&back).expect("redirect");
    let param = |key: &str| {
        back.query_pairs()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    rp.finish(&pending, &param("code"), &param("state")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_personio_connects_refreshes_and_reconnects_after_a_revocation() {
    let app = spawn_connect_app(200, true).await;
    let (status, body) = app
        .create_tenant(&awaiting_spec("acme", &app.personio, &app.learnamp))
        .await;
    assert_eq!(status, 201, "{body}");
    let invitations = app.state.services.invitations();
    let first = invitations.create("acme", None, None).await.unwrap();

    // A Personio user without administrator rights: refused, nothing stored.
    let grant = sign_in(&app, app.personio.oidc_non_admin())
        .await
        .expect("grant");
    let error = connect_tenant(
        &app.state,
        "acme",
        Connection::Oidc(grant),
        Some(token_of(&first.url)),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            personio_sync::connect::ConnectError::Refused(VerifyError::NotAdministrator)
        ),
        "{error:?}"
    );
    assert!(
        error
            .customer_message()
            .contains("this Personio user lacks administrator access")
            || error
                .customer_message()
                .contains("This Personio user lacks administrator access"),
        "{}",
        error.customer_message()
    );
    assert!(
        app.state
            .store
            .tenant_spec("acme")
            .await
            .unwrap()
            .unwrap()
            .personio_oidc
            .is_none()
    );

    // The administrator: connected, live, everyone synced. Access tokens live 3 s, so
    // the sync itself refreshes (and rotates) them.
    app.personio
        .set_oidc_access_token_ttl(Duration::from_secs(3));
    let grant = sign_in(&app, app.personio.oidc_admin())
        .await
        .expect("grant");
    let first_refresh_token = grant.refresh_token.clone();
    let view = connect_tenant(
        &app.state,
        "acme",
        Connection::Oidc(grant),
        Some(token_of(&first.url)),
    )
    .await
    .expect("connected");
    let info = view.connection.clone().expect("connection");
    assert_eq!(
        (info.method, info.by.as_deref()),
        (
            personio_sync::domain::tenant::ConnectionMethod::Oidc,
            Some(app.personio.oidc_admin().0.as_str())
        )
    );
    let view = app
        .wait_for("acme", Duration::from_secs(120), |view| {
            view["state"] == "live" && view["last_sync"]["finished_at"].is_string()
        })
        .await;
    assert_eq!(view["connection"]["method"], "oidc", "{view}");
    assert_learnamp_matches_personio(&app);
    let synced = synced_users(&app);
    assert!(synced > 100, "{synced}");
    assert_eq!(app.personio.webhooks().len(), 1, "one subscription");

    // Later syncs need refreshes (the tokens live 3 s): each rotated refresh token is
    // stored, and the tenant stays live on them.
    let stored_token = || async {
        app.state
            .store
            .tenant_spec("acme")
            .await
            .unwrap()
            .unwrap()
            .personio_oidc
            .expect("oidc connection")
            .refresh_token
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut view = view;
    let mut syncs = 0;
    while stored_token().await == first_refresh_token || syncs < 2 {
        assert!(std::time::Instant::now() < deadline, "no refresh: {view}");
        let previous = view["last_sync"]["finished_at"]
            .as_str()
            .map(str::to_string);
        let (status, body) = app.admin("POST", "/admin/tenants/acme/sync", None).await;
        assert_eq!(status, 202, "{body}");
        view = app.wait_for_sync("acme", previous.as_deref()).await;
        assert_eq!(view["state"], "live", "{view}");
        syncs += 1;
    }
    let stored_token = stored_token().await;
    assert_ne!(
        stored_token, first_refresh_token,
        "the rotated token is stored"
    );
    // Never in clear in an answer or an export without secrets.
    let export = personio_sync::export::export(&app.state.store, false)
        .await
        .unwrap();
    let export = format!(
        "{:?}",
        serde_json::to_string(&export.tenants[0].spec).unwrap()
    );
    assert!(
        !export.contains(stored_token.expose()),
        "refresh token in the export"
    );
    assert!(!view.to_string().contains(stored_token.expose()));

    // The provider revokes every grant: the next call fails, the tenant is `failed`
    // and says how to reconnect.
    app.personio.revoke_oidc_grants();
    let (status, body) = app.admin("POST", "/admin/tenants/acme/sync", None).await;
    assert_eq!(status, 202, "{body}");
    let view = app
        .wait_for("acme", Duration::from_secs(60), |view| {
            view["state"] == "failed"
        })
        .await;
    let message = view["last_error"].as_str().unwrap_or_default();
    assert!(
        message.contains("reconnect") && message.contains("personio-sync tenants invite acme"),
        "{view}"
    );

    // A new invitation and sign-in: live again, nobody twice.
    app.personio
        .set_oidc_access_token_ttl(Duration::from_secs(3600));
    // Through the pages, as the customer's admin does it: the new link opens the
    // connect page of the failed tenant (not its overview), and Sign in with Personio
    // connects it again.
    let second = invitations.create("acme", None, None).await.unwrap();
    let previous = view["last_sync"]["finished_at"]
        .as_str()
        .map(str::to_string);
    let (email, password) = app.personio.oidc_admin();
    let overview = personio_sync::demo::connect_as_browser(&second.url, &email, &password)
        .await
        .expect("reconnected through the pages");
    assert!(overview.ends_with("/app/acme/"), "{overview}");
    let view = app
        .wait_for("acme", Duration::from_secs(120), |view| {
            view["state"] == "live"
                && view["last_sync"]["finished_at"]
                    .as_str()
                    .map(str::to_string)
                    != previous
        })
        .await;
    assert_eq!(view["last_error"], Value::Null, "{view}");
    assert_learnamp_matches_personio(&app);
    assert_eq!(synced_users(&app), synced, "no duplicate users");
    assert_eq!(app.learnamp.users().len() as u64, synced, "no extra users");
    assert_eq!(app.personio.webhooks().len(), 1, "one subscription");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_patch_with_credentials_connects_an_awaiting_tenant() {
    let app = spawn_app(20, 3).await;
    let (status, body) = app
        .create_tenant(&awaiting_spec("acme", &app.personio, &app.learnamp))
        .await;
    assert_eq!(status, 201, "{body}");
    for forbidden in ["personio_oidc", "connection"] {
        let (status, body) = app
            .admin(
                "PATCH",
                "/admin/tenants/acme",
                Some(&json!({forbidden: {}})),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["field"], forbidden, "{body}");
    }
    let personio = tenant_spec("acme", &app.personio, &app.learnamp, json!({}))["personio"].clone();
    let (status, body) = app
        .admin(
            "PATCH",
            "/admin/tenants/acme",
            Some(&json!({"personio": personio})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["connection"]["method"], "client_credentials", "{body}");
    assert_eq!(body["connection"]["by"], Value::Null, "{body}");
    app.wait_for("acme", Duration::from_secs(60), |view| {
        view["state"] == "live" && view["last_sync"]["finished_at"].is_string()
    })
    .await;
    assert_learnamp_matches_personio(&app);
}
